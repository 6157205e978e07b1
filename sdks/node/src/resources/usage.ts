/**
 * `client.usage`: record usage events (one or a batch) and read them back (events, aggregates, summary).
 *
 * Every event carries an idempotency key from before its first attempt (`sdk_<uuid>` when you give none), so
 * a retried request never counts an event twice; give your own key (e.g. derived from your invoice line or
 * the provider's response id) to make your own replays safe too.
 */
import type { Query, RequestOptions } from "../http.js";
import type {
  UsageAggregationParams,
  UsageAggregationResponse,
  UsageBatchResponse,
  UsageEventListResponse,
  UsageFilters,
  UsageQueryParams,
  UsageRecordInput,
  UsageRecordResponse,
  UsageSummaryResponse,
} from "../types.js";
import { APIResource, checkEvent, prepareBatch, prepareEvent } from "./base.js";

function filters(params: UsageFilters): Query {
  return {
    subscription_id: params.subscriptionId,
    end_user_id: params.endUserId,
    metric_name: params.metricName,
    event_type: params.eventType,
    agent_id: params.agentId,
    workflow_id: params.workflowId,
    start_date: params.startDate,
    end_date: params.endDate,
  };
}

export class Usage extends APIResource {
  /**
   * Record one usage event. `recorded` is false when the key was already recorded. Without
   * `idempotencyKey` the SDK makes one before the first attempt, so retries cannot count it twice, and
   * `recorded` is true even if an earlier, lost attempt of this call stored it.
   */
  async record(event: UsageRecordInput, options?: RequestOptions): Promise<UsageRecordResponse> {
    checkEvent(event);
    const body = prepareEvent(event);
    const result = await this.http.request<UsageRecordResponse>(
      { method: "POST", path: "/v1/usage/events", body },
      options,
    );
    // A key the SDK made is unique to this call: if the service already had it, an earlier attempt of
    // this very call stored the event (its answer was lost), so this call did record it.
    if (event.idempotencyKey == null && result.recorded === false) result.recorded = true;
    return result;
  }

  /**
   * Record up to 1000 events at once, all or nothing (an invalid event rejects the whole batch with
   * `invalid_batch` and one `errors` item per bad event). Answers `recorded_count`, `skipped_count` and one
   * `results` item per event, in order.
   */
  async recordBatch(events: readonly UsageRecordInput[], options?: RequestOptions): Promise<UsageBatchResponse> {
    const body = { events: prepareBatch(events) };
    const result = await this.http.request<UsageBatchResponse>(
      { method: "POST", path: "/v1/usage/events/batch", body },
      options,
    );
    for (const item of result.results ?? []) {
      const given = events[item.index];
      if (item.recorded === false && given !== undefined && given.idempotencyKey == null) {
        item.recorded = true;
        result.recorded_count += 1;
        result.skipped_count -= 1;
      }
    }
    return result;
  }

  /** Usage events matching the filters (`startDate <= timestamp < endDate`), by timestamp. */
  async query(params: UsageQueryParams = {}, options?: RequestOptions): Promise<UsageEventListResponse> {
    const query = { ...filters(params), limit: params.limit, offset: params.offset };
    return this.http.request({ method: "GET", path: "/v1/usage/events", query }, options);
  }

  /** Totals per metric (or per `groupBy`: agent_id, workflow_id, model, end_user_id, day, ...). */
  async aggregation(params: UsageAggregationParams = {}, options?: RequestOptions): Promise<UsageAggregationResponse> {
    const query = { ...filters(params), group_by: params.groupBy };
    return this.http.request({ method: "GET", path: "/v1/usage/aggregation", query }, options);
  }

  /** Event count, quantity and cost over the filters, with a line per metric. */
  async summary(params: UsageFilters = {}, options?: RequestOptions): Promise<UsageSummaryResponse> {
    return this.http.request({ method: "GET", path: "/v1/usage/summary", query: filters(params) }, options);
  }
}
