/**
 * Types of every request and response (docs/api.md). Requests are camelCase here and snake_case on the wire;
 * responses are exactly what the service answers (camelCase keys, except the batch answer's
 * `recorded_count` / `skipped_count`, as the REST contract has them).
 */

/**
 * An exact decimal amount of USD in plain notation (`"4.5"`, `"0.000123"`, `"0"`), exact to 1e-12.
 * Never turn it into a JS number to add it up: use `sumDecimalStrings` / `compareDecimalStrings`.
 */
export type DecimalString = string;
/** An ISO 8601 timestamp (`2024-01-01T00:00:00.000000Z`). */
export type Timestamp = string;
/** A date input: an ISO 8601 string (a bare date is midnight UTC; no zone is UTC) or a Date. */
export type DateInput = string | Date;
export type Metadata = Record<string, unknown>;

export type EndUserStatus = "ACTIVE" | "DEACTIVATED";
export type SubscriptionStatus = "ACTIVE" | "CANCELED";
export type BillingCycle = "monthly" | "quarterly" | "yearly";
export type AggregationGroupBy =
  | "metric_name"
  | "agent_id"
  | "workflow_id"
  | "model"
  | "end_user_id"
  | "subscription_id"
  | "event_type"
  | "day";

// ------------------------------------------------------------------------------------------ end users

export interface EndUser {
  id: string;
  externalId: string;
  email: string | null;
  name: string | null;
  metadata: Metadata;
  status: EndUserStatus;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  deactivatedAt: Timestamp | null;
}

export interface EndUserResponse {
  endUser: EndUser;
}

export interface EndUserListResponse {
  endUsers: EndUser[];
  /** End users matching the `status` filter. */
  total: number;
  /** The tenant's active end users, whatever the filter. */
  activeCount: number;
  /** The tenant's deactivated end users, whatever the filter. */
  deactivatedCount: number;
  limit: number;
  offset: number;
}

export interface EndUserCreateParams {
  /** Your id for them, unique in your tenant (1..255 characters). */
  externalId: string;
  email?: string | null;
  name?: string | null;
  metadata?: Metadata | null;
}

/** Only the fields given change (`email: null` clears the email; `metadata` replaces it). */
export interface EndUserUpdateParams {
  externalId?: string;
  email?: string | null;
  name?: string | null;
  metadata?: Metadata;
}

export interface EndUserListParams {
  status?: EndUserStatus;
  limit?: number;
  offset?: number;
}

// -------------------------------------------------------------------------------------- subscriptions

export interface Subscription {
  id: string;
  organizationId: string;
  planId: string;
  billingCycle: BillingCycle;
  status: SubscriptionStatus;
  startDate: Timestamp;
  endDate: Timestamp | null;
  endUserId: string | null;
  metadata: Metadata;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  canceledAt: Timestamp | null;
}

export interface SubscriptionResponse {
  subscription: Subscription;
}

export interface SubscriptionListResponse {
  subscriptions: Subscription[];
  total: number;
  limit: number;
  offset: number;
}

export interface SubscriptionCreateParams {
  organizationId: string;
  planId: string;
  billingCycle: BillingCycle;
  startDate: DateInput;
  endDate?: DateInput | null;
  /** An end user's id or external id (it must exist). */
  endUserId?: string | null;
  metadata?: Metadata | null;
}

export interface SubscriptionUpdateParams {
  organizationId?: string;
  planId?: string;
  billingCycle?: BillingCycle;
  endDate?: DateInput | null;
  endUserId?: string | null;
  metadata?: Metadata;
}

export interface SubscriptionListParams {
  organizationId?: string;
  status?: SubscriptionStatus;
  limit?: number;
  offset?: number;
}

// ---------------------------------------------------------------------------------------------- usage

/** One usage event (`usage.record`, and each item of `usage.recordBatch`). */
export interface UsageRecordInput {
  eventType: string;
  metricName: string;
  /** A finite number >= 0, at most 1e12 with at most 6 decimal places. */
  quantity: number;
  /** Makes a repeat a no-op; the SDK makes one (`sdk_<uuid>`) before the first attempt when absent. */
  idempotencyKey?: string;
  agentId?: string | null;
  workflowId?: string | null;
  subscriptionId?: string | null;
  /** An end user's id or external id (an unknown external id registers the end user). */
  endUserId?: string | null;
  timestamp?: DateInput | null;
  /** `provider_cost_usd` (a decimal string, best; or a number) is the event's cost. */
  metadata?: Metadata | null;
}

export interface UsageEvent {
  id: string;
  eventType: string;
  metricName: string;
  quantity: number;
  idempotencyKey: string;
  agentId: string | null;
  workflowId: string | null;
  subscriptionId: string | null;
  endUserId: string | null;
  timestamp: Timestamp;
  receivedAt: Timestamp;
  providerCostUsd: DecimalString | null;
  metadata: Metadata;
}

export interface UsageRecordResponse {
  /** False when the key was already recorded (nothing changed). */
  recorded: boolean;
  idempotencyKey: string;
  event: UsageEvent;
}

export interface UsageBatchResult {
  index: number;
  idempotencyKey: string;
  recorded: boolean;
  id: string;
}

export interface UsageBatchResponse {
  recorded_count: number;
  skipped_count: number;
  results: UsageBatchResult[];
}

export interface UsageFilters {
  subscriptionId?: string;
  endUserId?: string;
  metricName?: string;
  eventType?: string;
  agentId?: string;
  workflowId?: string;
  /** Inclusive. */
  startDate?: DateInput;
  /** Exclusive. */
  endDate?: DateInput;
}

export interface UsageQueryParams extends UsageFilters {
  limit?: number;
  offset?: number;
}

export interface UsageAggregationParams extends UsageFilters {
  groupBy?: AggregationGroupBy;
}

export interface UsageEventListResponse {
  events: UsageEvent[];
  total: number;
  limit: number;
  offset: number;
}

export interface UsageAggregationItem {
  metricName: string;
  /** Absent when grouped by metric_name; `YYYY-MM-DD` for day; null for events without the dimension. */
  group?: string | null;
  totalQuantity: number;
  eventCount: number;
  /** null when no event of the group is priced (unknown is not zero). */
  totalCost: DecimalString | null;
  pricedEventCount: number;
  unpricedEventCount: number;
}

export interface UsageAggregationResponse {
  items: UsageAggregationItem[];
  totalCost: DecimalString | null;
  eventCount: number;
  pricedEventCount: number;
  unpricedEventCount: number;
  groupBy: AggregationGroupBy;
}

export interface UsageMetricSummary {
  metricName: string;
  totalQuantity: number;
  eventCount: number;
  totalCost: DecimalString | null;
  pricedEventCount: number;
  unpricedEventCount: number;
}

export interface UsageSummaryResponse {
  totalEvents: number;
  totalQuantity: number;
  totalCost: DecimalString | null;
  pricedEventCount: number;
  unpricedEventCount: number;
  metrics: UsageMetricSummary[];
}

// ----------------------------------------------------------------------------------- cost attribution

export interface DateRange {
  /** Inclusive (required). */
  startDate: DateInput;
  /** Exclusive (required). */
  endDate: DateInput;
}

export interface CostBreakdownItem {
  /** The agent (workflow) id; null for the events without one. */
  attributionValue: string | null;
  totalCost: DecimalString | null;
  eventCount: number;
  pricedEventCount: number;
  unpricedEventCount: number;
  totalQuantity: number;
}

export interface CostBreakdownResponse {
  dimension: "agent" | "workflow";
  items: CostBreakdownItem[];
  /** Exactly the sum of the items' `totalCost`. */
  totalCost: DecimalString | null;
  eventCount: number;
  pricedEventCount: number;
  unpricedEventCount: number;
  totalQuantity: number;
  startDate: Timestamp;
  endDate: Timestamp;
}

export interface AttributionValuesResponse {
  values: string[];
}
