/**
 * Shared plumbing of the resources: path building, the wire form of events, and the client-side checks that
 * only catch what the service would certainly reject, throwing the class its answer would map to.
 */
import { randomUUID } from "node:crypto";

import { InvalidEmailError, InvalidRequestError, isObject, type BatchItemError } from "../errors.js";
import { formatDate, type HttpClient } from "../http.js";
import type { DateInput, UsageRecordInput } from "../types.js";

export const MAX_BATCH_SIZE = 1000;

// exactly one "@", something on both sides, no whitespace: anything else is surely not an address.
const EMAIL_SHAPE = /^[^@\s]+@[^@\s]+$/;

export abstract class APIResource {
  protected readonly http: HttpClient;

  constructor(http: HttpClient) {
    this.http = http;
  }
}

/** `path("/v1/end_users/{}", id)` with each id checked and percent-encoded (no path injection). */
export function path(template: string, ...ids: string[]): string {
  let result = template;
  for (const id of ids) {
    if (typeof id !== "string" || !id.trim()) {
      throw new InvalidRequestError(`An id must be a non-empty string, got ${JSON.stringify(id)}`, {
        code: "invalid_request",
        param: "id",
      });
    }
    result = result.replace("{}", encodeURIComponent(id));
  }
  return result;
}

export function checkEmail(email: unknown): void {
  if (email === undefined || email === null) return;
  if (typeof email !== "string" || !EMAIL_SHAPE.test(email.trim())) {
    throw new InvalidEmailError(`Invalid email address: ${JSON.stringify(email)}`, {
      code: "invalid_email",
      param: "email",
    });
  }
}

/** The fields actually given (undefined dropped; null kept where it clears a field). */
export function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

/** The fields given and not null (null means "not given" to the service). */
export function present(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined && value !== null));
}

export function dateValue(value: DateInput | null | undefined): string | null | undefined {
  return value === undefined || value === null ? value : formatDate(value);
}

function quantityProblem(quantity: unknown): string | null {
  if (typeof quantity !== "number") return `quantity must be a number, got ${typeof quantity}`;
  if (!Number.isFinite(quantity)) return `quantity must be a finite number, got ${quantity}`;
  if (quantity < 0) return `quantity must be >= 0, got ${quantity}`;
  return null;
}

export function newIdempotencyKey(): string {
  return `sdk_${randomUUID().replace(/-/g, "")}`;
}

const EVENT_FIELDS: Record<keyof UsageRecordInput, string> = {
  eventType: "event_type",
  metricName: "metric_name",
  quantity: "quantity",
  idempotencyKey: "idempotency_key",
  agentId: "agent_id",
  workflowId: "workflow_id",
  subscriptionId: "subscription_id",
  endUserId: "end_user_id",
  timestamp: "timestamp",
  metadata: "metadata",
};

/**
 * The wire copy of one event (the caller's object is never touched): snake_case, null fields dropped, an
 * idempotency key added when none was given (before the first attempt: every retry sends the same key).
 * An unknown field is sent under its own name, so that the service names it in its `invalid_request`.
 */
export function prepareEvent(event: UsageRecordInput): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (value === undefined || value === null) continue;
    const wireName = (EVENT_FIELDS as Record<string, string>)[name] ?? name;
    wire[wireName] = name === "timestamp" ? formatDate(value as DateInput) : value;
  }
  if (wire["idempotency_key"] === undefined) wire["idempotency_key"] = newIdempotencyKey();
  return wire;
}

export function checkEvent(event: UsageRecordInput): void {
  const problem = quantityProblem(event.quantity);
  if (problem !== null) throw new InvalidRequestError(problem, { code: "invalid_quantity", param: "quantity" });
}

/** Wire copies of a batch's events, checked like the service would (1..1000 events, all or nothing). */
export function prepareBatch(events: readonly UsageRecordInput[]): Record<string, unknown>[] {
  if (!Array.isArray(events)) {
    throw new InvalidRequestError("events must be an array of events", { code: "invalid_request", param: "events" });
  }
  if (events.length === 0) {
    throw new InvalidRequestError("A batch needs at least one event", { code: "invalid_request", param: "events" });
  }
  if (events.length > MAX_BATCH_SIZE) {
    throw new InvalidRequestError(
      `A batch holds at most ${MAX_BATCH_SIZE} events, got ${events.length}: split it`,
      { code: "batch_too_large", param: "events" },
    );
  }
  const errors: BatchItemError[] = [];
  events.forEach((event, index) => {
    if (!isObject(event)) {
      errors.push({ index, code: "invalid_request", message: "an event must be an object", param: null });
      return;
    }
    const problem = quantityProblem(event.quantity);
    if (problem !== null) errors.push({ index, code: "invalid_quantity", message: problem, param: "quantity" });
  });
  if (errors.length > 0) {
    const first = errors[0]!;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
    throw new InvalidRequestError(
      `Invalid event at index ${first.index}: ${first.message}${more}; nothing was recorded`,
      { code: "invalid_batch", param: "events", errors },
    );
  }
  return events.map(prepareEvent);
}
