// Every method of every resource against a real `bearlumen serve` (SQLite), answers checked field by field.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import sdk from "./support/sdk.mjs";
import { serviceForTests } from "./support/service.mjs";

const { sumDecimalStrings } = sdk;

const fx = serviceForTests(sdk);

describe("endUsers", () => {
  test("create, retrieve, update, list, deactivate, reactivate", async () => {
    const { endUser } = await fx.client.endUsers.create({
      externalId: "user_123",
      name: "AI Startup Inc",
      email: "ops@startup.example",
      metadata: { ai_provider: "openai" },
    });
    assert.match(endUser.id, /^eu_[0-9a-f]{24}$/);
    assert.equal(endUser.externalId, "user_123");
    assert.equal(endUser.name, "AI Startup Inc");
    assert.equal(endUser.email, "ops@startup.example");
    assert.deepEqual(endUser.metadata, { ai_provider: "openai" });
    assert.equal(endUser.status, "ACTIVE");
    assert.equal(endUser.deactivatedAt, null);

    const second = (await fx.client.endUsers.create({ externalId: "user_456" })).endUser;
    assert.equal(second.email, null);

    assert.deepEqual((await fx.client.endUsers.retrieve(endUser.id)).endUser, endUser);

    const updated = (await fx.client.endUsers.update(endUser.id, { name: "Updated Name", metadata: { plan: "enterprise" } })).endUser;
    assert.equal(updated.name, "Updated Name");
    assert.deepEqual(updated.metadata, { plan: "enterprise" });
    assert.equal(updated.email, "ops@startup.example"); // not given: unchanged
    const cleared = (await fx.client.endUsers.update(endUser.id, { email: null })).endUser;
    assert.equal(cleared.email, null); // null clears

    const deactivated = (await fx.client.endUsers.deactivate(endUser.id)).endUser;
    assert.equal(deactivated.status, "DEACTIVATED");
    assert.ok(deactivated.deactivatedAt);

    const all = await fx.client.endUsers.list();
    assert.deepEqual(all.endUsers.map((u) => u.externalId), ["user_123", "user_456"]);
    assert.equal(all.total, 2);
    assert.equal(all.activeCount, 1);
    assert.equal(all.deactivatedCount, 1);
    assert.equal(all.limit, 100);
    assert.equal(all.offset, 0);

    const active = await fx.client.endUsers.list({ status: "ACTIVE", limit: 50, offset: 0 });
    assert.deepEqual(active.endUsers.map((u) => u.id), [second.id]);
    assert.equal(active.total, 1);
    assert.equal(active.activeCount, 1);
    assert.equal(active.deactivatedCount, 1);
    assert.equal(active.limit, 50);

    const page = await fx.client.endUsers.list({ limit: 1, offset: 1 });
    assert.deepEqual(page.endUsers.map((u) => u.id), [second.id]);

    const reactivated = (await fx.client.endUsers.reactivate(endUser.id)).endUser;
    assert.equal(reactivated.status, "ACTIVE");
    assert.equal(reactivated.deactivatedAt, null);
    const counts = await fx.client.endUsers.list();
    assert.equal(counts.activeCount, 2);
    assert.equal(counts.deactivatedCount, 0);
  });
});

describe("subscriptions", () => {
  test("create, retrieve, update, cancel, list", async () => {
    const { endUser } = await fx.client.endUsers.create({ externalId: "sub_owner" });
    const { subscription } = await fx.client.subscriptions.create({
      organizationId: "org_123",
      planId: "plan_pro_monthly",
      billingCycle: "monthly",
      startDate: "2024-01-01T00:00:00Z",
      endUserId: "sub_owner", // an external id: the service stores the id
      metadata: { seats: 5 },
    });
    assert.match(subscription.id, /^sub_/);
    assert.equal(subscription.organizationId, "org_123");
    assert.equal(subscription.planId, "plan_pro_monthly");
    assert.equal(subscription.billingCycle, "monthly");
    assert.equal(subscription.status, "ACTIVE");
    assert.equal(subscription.startDate, "2024-01-01T00:00:00.000000Z");
    assert.equal(subscription.endDate, null);
    assert.equal(subscription.endUserId, endUser.id);
    assert.deepEqual(subscription.metadata, { seats: 5 });

    const other = (
      await fx.client.subscriptions.create({
        organizationId: "org_999",
        planId: "plan_free",
        billingCycle: "yearly",
        startDate: new Date(Date.UTC(2024, 5, 1)),
      })
    ).subscription;
    assert.equal(other.startDate, "2024-06-01T00:00:00.000000Z");

    assert.deepEqual((await fx.client.subscriptions.retrieve(subscription.id)).subscription, subscription);

    const updated = (
      await fx.client.subscriptions.update(subscription.id, { planId: "plan_enterprise", endDate: "2025-01-01" })
    ).subscription;
    assert.equal(updated.planId, "plan_enterprise");
    assert.equal(updated.endDate, "2025-01-01T00:00:00.000000Z");
    assert.equal(updated.billingCycle, "monthly");

    const canceled = (await fx.client.subscriptions.cancel(subscription.id)).subscription;
    assert.equal(canceled.status, "CANCELED");
    assert.ok(canceled.canceledAt);
    assert.equal((await fx.client.subscriptions.cancel(subscription.id)).subscription.canceledAt, canceled.canceledAt);

    const mine = await fx.client.subscriptions.list({ organizationId: "org_123", limit: 20, offset: 0 });
    assert.deepEqual(mine.subscriptions.map((s) => s.id), [subscription.id]);
    assert.equal(mine.total, 1);
    assert.equal(mine.limit, 20);
    const active = await fx.client.subscriptions.list({ status: "ACTIVE" });
    assert.deepEqual(active.subscriptions.map((s) => s.id), [other.id]);
    assert.equal((await fx.client.subscriptions.list()).total, 2);
  });
});

describe("usage and cost attribution", () => {
  test("record, recordBatch, query, aggregation, summary, byAgent, byWorkflow, listAgents, listWorkflows", async () => {
    const base = { eventType: "token_usage", metricName: "llm_tokens", timestamp: "2024-01-10T12:00:00Z" };
    const first = await fx.client.usage.record({
      ...base,
      quantity: 150000,
      idempotencyKey: "invoice-001-summary",
      agentId: "support-bot",
      workflowId: "customer-onboarding",
      metadata: { model: "gpt-4-turbo", provider: "openai", provider_cost_usd: "4.50" },
    });
    assert.equal(first.recorded, true);
    assert.equal(first.idempotencyKey, "invoice-001-summary");
    assert.equal(first.event.quantity, 150000);
    assert.equal(first.event.providerCostUsd, "4.5");
    assert.equal(first.event.agentId, "support-bot");
    assert.equal(first.event.timestamp, "2024-01-10T12:00:00.000000Z");

    const again = await fx.client.usage.record({ ...base, quantity: 150000, idempotencyKey: "invoice-001-summary" });
    assert.equal(again.recorded, false);
    assert.equal(again.event.id, first.event.id);

    const keyless = await fx.client.usage.record({ ...base, quantity: 1, agentId: "support-bot" });
    assert.equal(keyless.recorded, true);
    assert.match(keyless.idempotencyKey, /^sdk_[0-9a-f]{32}$/);

    const batch = await fx.client.usage.recordBatch([
      { ...base, quantity: 1000, idempotencyKey: "batch-1-evt-1", agentId: "research-agent", metadata: { provider_cost_usd: "0.1" } },
      { ...base, quantity: 2000, idempotencyKey: "batch-1-evt-2", workflowId: "nightly", metadata: { provider_cost_usd: "0.2" } },
      { ...base, quantity: 3, idempotencyKey: "invoice-001-summary" },
      { ...base, quantity: 7, timestamp: new Date(Date.UTC(2024, 0, 11)), endUserId: "batch_user" },
    ]);
    assert.equal(batch.recorded_count, 3);
    assert.equal(batch.skipped_count, 1);
    assert.deepEqual(batch.results.map((r) => [r.index, r.recorded]), [[0, true], [1, true], [2, false], [3, true]]);

    const range = { startDate: "2024-01-01", endDate: "2024-02-01" };
    const events = await fx.client.usage.query({ ...range, metricName: "llm_tokens", limit: 100 });
    assert.equal(events.total, 5);
    assert.deepEqual(events.events.map((e) => e.quantity).sort((a, b) => a - b), [1, 7, 1000, 2000, 150000]);
    const byAgentEvents = await fx.client.usage.query({ agentId: "support-bot" });
    assert.equal(byAgentEvents.total, 2);
    const user = (await fx.client.usage.query({ endUserId: "batch_user" })).events;
    assert.equal(user.length, 1);
    assert.match(user[0].endUserId, /^eu_/);
    assert.equal((await fx.client.usage.query({ limit: 2, offset: 4 })).events.length, 1);

    const aggregation = await fx.client.usage.aggregation(range);
    assert.equal(aggregation.groupBy, "metric_name");
    assert.equal(aggregation.totalCost, "4.8");
    assert.equal(aggregation.eventCount, 5);
    assert.equal(aggregation.pricedEventCount, 3);
    assert.equal(aggregation.unpricedEventCount, 2);
    assert.deepEqual(aggregation.items.map((i) => [i.metricName, i.totalQuantity, i.totalCost]), [["llm_tokens", 153008, "4.8"]]);
    const perAgent = await fx.client.usage.aggregation({ ...range, groupBy: "agent_id" });
    assert.deepEqual(perAgent.items.map((i) => [i.group, i.eventCount, i.totalCost]), [
      ["research-agent", 1, "0.1"],
      ["support-bot", 2, "4.5"],
      [null, 2, "0.2"],
    ]);
    const perDay = await fx.client.usage.aggregation({ ...range, groupBy: "day" });
    assert.deepEqual(perDay.items.map((i) => [i.group, i.eventCount]), [["2024-01-10", 4], ["2024-01-11", 1]]);

    const summary = await fx.client.usage.summary({ ...range, eventType: "token_usage" });
    assert.equal(summary.totalEvents, 5);
    assert.equal(summary.totalQuantity, 153008);
    assert.equal(summary.totalCost, "4.8");
    assert.deepEqual(summary.metrics.map((m) => [m.metricName, m.eventCount]), [["llm_tokens", 5]]);
    assert.equal((await fx.client.usage.summary({ startDate: "2025-01-01", endDate: "2025-02-01" })).totalCost, null);

    const window = { startDate: "2024-01-01T00:00:00Z", endDate: "2024-02-01T00:00:00Z" };
    const agents = await fx.client.costAttribution.byAgent(window);
    assert.equal(agents.dimension, "agent");
    assert.deepEqual(agents.items.map((i) => [i.attributionValue, i.totalCost, i.eventCount]), [
      ["support-bot", "4.5", 2],
      [null, "0.2", 2],
      ["research-agent", "0.1", 1],
    ]);
    assert.equal(agents.totalCost, "4.8");
    // the total is exactly the sum of the items, added as decimal strings (never floats)
    assert.equal(sumDecimalStrings(agents.items.map((i) => i.totalCost).filter((c) => c !== null)), agents.totalCost);
    assert.equal(agents.startDate, "2024-01-01T00:00:00.000000Z");

    const workflows = await fx.client.costAttribution.byWorkflow(window);
    assert.equal(workflows.dimension, "workflow");
    assert.deepEqual(workflows.items.map((i) => [i.attributionValue, i.totalCost]), [
      ["customer-onboarding", "4.5"],
      ["nightly", "0.2"],
      [null, "0.1"],
    ]);
    assert.deepEqual((await fx.client.costAttribution.listAgents(window)).values, ["research-agent", "support-bot"]);
    assert.deepEqual((await fx.client.costAttribution.listWorkflows(window)).values, ["customer-onboarding", "nightly"]);
  });

  test("recordBatch takes 1000 events in one request", async () => {
    const events = Array.from({ length: 1000 }, (_, i) => ({
      eventType: "bulk",
      metricName: "rows",
      quantity: i,
      idempotencyKey: `bulk-${i}`,
      timestamp: "2023-06-01T00:00:00Z",
    }));
    const result = await fx.client.usage.recordBatch(events);
    assert.equal(result.recorded_count, 1000);
    assert.equal(result.results.length, 1000);
    const summary = await fx.client.usage.summary({ eventType: "bulk" });
    assert.equal(summary.totalEvents, 1000);
    assert.equal(summary.totalQuantity, (999 * 1000) / 2);
  });

  test("ping answers ok with a valid key", async () => {
    const result = await fx.client.ping();
    assert.equal(result.ok, true);
    assert.equal(result.error, undefined);
  });
});
