// Compiled (never run) by .ci/node: the public types as a TypeScript user meets them, through the package's
// own `exports` (ESM here, CommonJS in usage.cts). Each @ts-expect-error is a mistake the types must catch.
import {
  BearLumen,
  BearLumenError,
  RateLimitError,
  sumDecimalStrings,
  type CostBreakdownResponse,
  type DecimalString,
  type EndUserListResponse,
  type FlushResult,
  type UsageRecordInput,
} from "@bearlumen/node-sdk";

export async function tour(client: BearLumen): Promise<DecimalString | null> {
  const { endUser } = await client.endUsers.create({ externalId: "user_123", name: "AI Startup Inc", metadata: { plan: "pro" } });
  const id: string = endUser.id;
  const list: EndUserListResponse = await client.endUsers.list({ status: "ACTIVE", limit: 50, offset: 0 });
  const counts: number = list.activeCount + list.deactivatedCount + list.total;
  // @ts-expect-error: request parameters are camelCase
  await client.endUsers.create({ external_id: "x" });
  // @ts-expect-error: the status is one of two values
  await client.endUsers.list({ status: "active" });

  const event: UsageRecordInput = { eventType: "token_usage", metricName: "llm_tokens", quantity: counts, agentId: id };
  const recorded = await client.usage.record(event, { signal: AbortSignal.timeout(1000), maxRetries: 1 });
  const batch = await client.usage.recordBatch([event, { ...event, idempotencyKey: "k" }]);
  const n: number = batch.recorded_count + batch.skipped_count + (recorded.recorded ? 1 : 0);
  // @ts-expect-error: quantity is a number
  await client.usage.record({ eventType: "t", metricName: "m", quantity: "1" });

  const breakdown: CostBreakdownResponse = await client.costAttribution.byAgent({ startDate: "2024-01-01", endDate: new Date() });
  // @ts-expect-error: money is a decimal string (or null), never a number
  const wrong: number = breakdown.totalCost;
  const costs = breakdown.items.map((item) => item.totalCost).filter((cost): cost is DecimalString => cost !== null);
  await client.subscriptions.create({ organizationId: "org", planId: "p", billingCycle: "monthly", startDate: "2024-01-01" });
  // @ts-expect-error: the billing cycle is one of three values
  await client.subscriptions.create({ organizationId: "org", planId: "p", billingCycle: "weekly", startDate: "2024-01-01" });

  const tracked = client.track({ object: "chat.completion" }, { workflowId: "w", costUsd: "0.01" });
  const flushed: FlushResult = await client.flush();
  try {
    await client.ping();
  } catch (error) {
    if (error instanceof RateLimitError) return String(error.retryAfter ?? n);
    if (error instanceof BearLumenError) return error.code ?? error.requestId ?? String(error.status);
  }
  void wrong;
  void tracked;
  void flushed;
  return sumDecimalStrings(costs);
}
