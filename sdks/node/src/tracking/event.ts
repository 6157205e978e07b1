/**
 * A tracked call becomes a usage event, laid out as the Python SDK lays it out (bearlumen/metering/event.py):
 * event type `token_usage`, metric `llm_tokens`, quantity = total tokens, the token buckets, `provider` and
 * the billed `model` in the metadata, and an idempotency key derived from the provider's response id (the
 * same derivation as Python's, so one response reported by both SDKs is recorded once).
 *
 * Cost: the Node SDK carries no price list, so a tracked call is sent with `pricing_status: "pending"` and
 * the service prices it when it stores it (docs/api.md, "Service-side pricing"), with the Python SDK's own
 * price book, from the buckets, `provider`, `model`, served `tier` and the event's `timestamp` (the price
 * date): the stored cost is the one the Python SDK would have sent, or `unpriced` with the reason (never 0).
 * A `costUsd` given by the caller is recorded as given and never repriced.
 */
import { createHash, randomUUID } from "node:crypto";

import { InvalidRequestError } from "../errors.js";
import type { DecimalString, Metadata, UsageRecordInput } from "../types.js";
import { isDecimalString } from "../decimal.js";
import { VERSION } from "../version.js";
import type { Facts } from "./detect.js";
import { totalTokens, usageMetadata } from "./usage.js";

export const EVENT_TYPE = "token_usage";
export const METRIC_NAME = "llm_tokens";

/** How the usage was learned: only "response" and "stream" are complete. */
export type UsageSource = "response" | "stream" | "stream_partial" | "unavailable";

/** Options of `track()`: attribution, overrides of what the response says, and extra metadata. */
export interface TrackOptions {
  agentId?: string;
  workflowId?: string;
  /** An end user's id or external id (an unknown external id registers the end user). */
  endUserId?: string;
  subscriptionId?: string;
  /** The provider whose price list applies (default: read from the response's shape). */
  provider?: string;
  /** The billed model (default: the model the response names). */
  model?: string;
  operation?: string;
  /** The provider's response id (default: the response's `id`); it makes the idempotency key. */
  responseId?: string;
  /** A cost you know, as an exact decimal string (`"0.0042"`): recorded as given. */
  costUsd?: DecimalString;
  /** Merged into the event's metadata. */
  metadata?: Metadata;
}

/** Stable for one provider response, so reporting it twice records it once; random without an id. */
export function idempotencyKey(provider: string, responseId: string | null): string {
  if (responseId) {
    const digest = createHash("sha256").update(`${provider}:${responseId}`).digest("hex");
    return `llm_${digest.slice(0, 40)}`;
  }
  return `llm_${randomUUID().replace(/-/g, "")}`;
}

export function buildEvent(
  facts: Facts,
  options: TrackOptions,
  source: UsageSource,
  streamed: boolean,
  at: Date,
): UsageRecordInput {
  const provider = options.provider ?? facts.provider;
  const model = options.model ?? facts.model;
  const responseId = options.responseId ?? facts.responseId;
  const usage = facts.usage;
  const metadata: Metadata = { ...(options.metadata ?? {}) };
  Object.assign(metadata, {
    integration: "node",
    sdk: `bearlumen-node/${VERSION}`,
    provider,
    operation: options.operation ?? facts.operation,
    streamed,
    usage_source: usage === null ? "unavailable" : source,
  });
  if (model) metadata["model"] = model;
  if (facts.model && model !== facts.model) metadata["model_returned"] = facts.model;
  if (facts.tier) metadata["tier"] = facts.tier;
  if (responseId) metadata["response_id"] = responseId;
  if (usage !== null) Object.assign(metadata, usageMetadata(usage));
  if (options.costUsd !== undefined) {
    if (!isDecimalString(options.costUsd)) {
      throw new InvalidRequestError(`costUsd must be a decimal string such as "0.0042", got ${JSON.stringify(options.costUsd)}`, {
        code: "invalid_request",
        param: "costUsd",
      });
    }
    metadata["provider_cost_usd"] = options.costUsd;
    metadata["pricing_status"] = "caller_price";
    metadata["pricing_source"] = "caller";
  } else {
    metadata["pricing_status"] = "pending"; // priced by the service at ingest
  }
  const event: UsageRecordInput = {
    eventType: EVENT_TYPE,
    metricName: METRIC_NAME,
    quantity: usage === null ? 0 : totalTokens(usage),
    idempotencyKey: idempotencyKey(vendorOf(provider), responseId),
    timestamp: at.toISOString(),
    metadata,
  };
  if (options.agentId != null) event.agentId = options.agentId;
  if (options.workflowId != null) event.workflowId = options.workflowId;
  if (options.endUserId != null) event.endUserId = options.endUserId;
  if (options.subscriptionId != null) event.subscriptionId = options.subscriptionId;
  return event;
}

// Providers that answer with the vendor's response ids (as bearlumen/metering/event.py's _VENDOR).
const VENDOR: Record<string, string> = { azure: "openai", aws: "anthropic", bedrock: "anthropic", vertex: "anthropic" };

function vendorOf(provider: string): string {
  return VENDOR[provider] ?? provider;
}
