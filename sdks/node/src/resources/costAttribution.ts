/** `client.costAttribution`: what each agent and workflow cost over a date range. */
import type { RequestOptions } from "../http.js";
import type { AttributionValuesResponse, CostBreakdownResponse, DateRange } from "../types.js";
import { APIResource } from "./base.js";

function range(params: DateRange) {
  return { start_date: params.startDate, end_date: params.endDate };
}

export class CostAttribution extends APIResource {
  /** Cost per agent (`start <= timestamp < end`), most expensive first; unpriced items last. */
  async byAgent(params: DateRange, options?: RequestOptions): Promise<CostBreakdownResponse> {
    return this.http.request({ method: "GET", path: "/v1/cost_attribution/by_agent", query: range(params) }, options);
  }

  /** Cost per workflow, as `byAgent`. */
  async byWorkflow(params: DateRange, options?: RequestOptions): Promise<CostBreakdownResponse> {
    return this.http.request(
      { method: "GET", path: "/v1/cost_attribution/by_workflow", query: range(params) },
      options,
    );
  }

  /** The distinct agent ids with events in the range, sorted. */
  async listAgents(params: DateRange, options?: RequestOptions): Promise<AttributionValuesResponse> {
    return this.http.request({ method: "GET", path: "/v1/cost_attribution/agents", query: range(params) }, options);
  }

  /** The distinct workflow ids with events in the range, sorted. */
  async listWorkflows(params: DateRange, options?: RequestOptions): Promise<AttributionValuesResponse> {
    return this.http.request(
      { method: "GET", path: "/v1/cost_attribution/workflows", query: range(params) },
      options,
    );
  }
}
