/** `client.costAttribution`: what each agent and workflow cost over a date range. */
import type { RequestOptions } from "../http.js";
import type { AttributionValuesResponse, CostBreakdownResponse, DateRange } from "../types.js";
import { APIResource } from "./base.js";

export class CostAttribution extends APIResource {
  /** Cost per agent (`start <= timestamp < end`), most expensive first; unpriced items last. */
  async byAgent(params: DateRange, options?: RequestOptions): Promise<CostBreakdownResponse> {
    return this.read("by_agent", params, options);
  }

  /** Cost per workflow, as `byAgent`. */
  async byWorkflow(params: DateRange, options?: RequestOptions): Promise<CostBreakdownResponse> {
    return this.read("by_workflow", params, options);
  }

  /** The distinct agent ids with events in the range, sorted. */
  async listAgents(params: DateRange, options?: RequestOptions): Promise<AttributionValuesResponse> {
    return this.read("agents", params, options);
  }

  /** The distinct workflow ids with events in the range, sorted. */
  async listWorkflows(params: DateRange, options?: RequestOptions): Promise<AttributionValuesResponse> {
    return this.read("workflows", params, options);
  }

  private read<T>(endpoint: string, params: DateRange, options: RequestOptions | undefined): Promise<T> {
    const query = { start_date: params.startDate, end_date: params.endDate };
    return this.http.request({ method: "GET", path: `/v1/cost_attribution/${endpoint}`, query }, options);
  }
}
