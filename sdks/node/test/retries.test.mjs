// Retries through the fault-injecting proxy (test/support/faults.mjs, a FAULT FAKE in front of the real
// service): each event stored exactly once, the idempotency key fixed before the first attempt.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import sdk from "./support/sdk.mjs";
import { startFaultProxy } from "./support/faults.mjs";
import { startService } from "./support/service.mjs";

const { BearLumen, BearLumenError, NetworkError, RateLimitError } = sdk;

let service;
let direct; // straight to the service: what is stored
const proxies = [];

before(async () => {
  service = await startService();
  direct = new BearLumen({ apiKey: service.apiKey, baseUrl: service.baseUrl });
});

after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await service?.stop();
});

async function through(plan, options = {}) {
  const proxy = await startFaultProxy(service.baseUrl, plan);
  proxies.push(proxy);
  return { proxy, client: new BearLumen({ apiKey: service.apiKey, baseUrl: proxy.baseUrl, maxRetries: 3, ...options }) };
}

const event = (eventType, quantity, extra = {}) => ({ eventType, metricName: "calls", quantity, ...extra });

test("record: answer lost after the service stored it, then a 500: stored once, recorded: true", async () => {
  const { proxy, client } = await through((key, n) =>
    key === "POST /v1/usage/events" ? (n === 1 ? "drop-after-forward" : n === 2 ? { status: 500 } : "forward") : "forward",
  );
  const result = await client.usage.record(event("lost-answer", 5));
  assert.equal(result.recorded, true);
  assert.equal(proxy.attempts("POST /v1/usage/events"), 3);
  const bodies = proxy.seen.filter((s) => s.key === "POST /v1/usage/events").map((s) => JSON.parse(s.body));
  assert.equal(new Set(bodies.map((b) => b.idempotency_key)).size, 1, "one key for every attempt");
  assert.equal(bodies[0].idempotency_key, result.idempotencyKey);
  assert.equal(new Set(proxy.seen.map((s) => s.requestId)).size, 3, "a request id per attempt");
  const stored = await direct.usage.query({ eventType: "lost-answer" });
  assert.equal(stored.total, 1);
  assert.equal(stored.events[0].quantity, 5);
});

test("recordBatch: dropped after forwarding, then 503 Retry-After: every event stored once", async () => {
  const { proxy, client } = await through((key, n) =>
    key === "POST /v1/usage/events/batch"
      ? n === 1
        ? "drop-after-forward"
        : n === 2
          ? { status: 503, headers: { "retry-after": "1" } }
          : "forward"
      : "forward",
  );
  const events = Array.from({ length: 250 }, (_, i) => event("batch-retry", i + 1));
  events[0].idempotencyKey = "mine-0"; // a key of the caller's: its repeat reports recorded: false
  const result = await client.usage.recordBatch(events);
  assert.equal(proxy.attempts("POST /v1/usage/events/batch"), 3);
  assert.equal(result.recorded_count, 249);
  assert.equal(result.skipped_count, 1);
  assert.equal(result.results[0].recorded, false);
  const summary = await direct.usage.summary({ eventType: "batch-retry" });
  assert.equal(summary.totalEvents, 250);
  assert.equal(summary.totalQuantity, (250 * 251) / 2);
});

test("subscriptions.create is not repeated after an ambiguous failure, but is after a 500", async () => {
  const { client } = await through((key, n) => (key === "POST /v1/subscriptions" && n === 1 ? "drop-after-forward" : "forward"));
  const params = { organizationId: "org_once", planId: "p", billingCycle: "monthly", startDate: "2024-01-01" };
  const error = await client.subscriptions.create(params).then(() => assert.fail("no error"), (e) => e);
  assert.ok(error instanceof NetworkError);
  assert.match(error.message, /may have processed it/);
  assert.equal((await direct.subscriptions.list({ organizationId: "org_once" })).total, 1);

  const { proxy, client: second } = await through((key, n) => (key === "POST /v1/subscriptions" && n === 1 ? { status: 500 } : "forward"));
  await second.subscriptions.create({ ...params, organizationId: "org_twice" });
  assert.equal(proxy.attempts("POST /v1/subscriptions"), 2);
  assert.equal((await direct.subscriptions.list({ organizationId: "org_twice" })).total, 1);
});

test("a 500 on every attempt: BearLumenError after maxRetries + 1 attempts", async () => {
  const { proxy, client } = await through(() => ({ status: 500 }), { maxRetries: 2 });
  const error = await client.endUsers.list().then(() => assert.fail("no error"), (e) => e);
  assert.equal(error.constructor, BearLumenError);
  assert.equal(error.status, 500);
  assert.equal(error.code, "internal_error");
  assert.equal(proxy.attempts("GET /v1/end_users"), 3);
});

test("a Retry-After over 60 s is not waited for", async () => {
  const { proxy, client } = await through(() => ({ status: 429, headers: { "retry-after": "120" } }));
  const error = await client.endUsers.list().then(() => assert.fail("no error"), (e) => e);
  assert.ok(error instanceof RateLimitError);
  assert.equal(error.retryAfter, 120);
  assert.equal(proxy.attempts("GET /v1/end_users"), 1);
});

test("a timed-out attempt is retried; the per-call timeout and maxRetries apply", async () => {
  const { proxy, client } = await through((key, n) => (key === "POST /v1/usage/events" && n === 1 ? "hang" : "forward"), { timeout: 300 });
  const result = await client.usage.record(event("timeout-retry", 1));
  assert.equal(result.recorded, true);
  assert.equal(proxy.attempts("POST /v1/usage/events"), 2);
  assert.equal((await direct.usage.query({ eventType: "timeout-retry" })).total, 1);

  const { client: hanging } = await through(() => "hang");
  const error = await hanging.endUsers.list({}, { timeout: 200, maxRetries: 0 }).then(() => assert.fail("no error"), (e) => e);
  assert.ok(error instanceof NetworkError);
  assert.equal(error.code, "timeout");
});

test("an AbortSignal ends a hanging call and the wait before a retry", async () => {
  const { client } = await through(() => "hang");
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("user gave up")), 100);
  await assert.rejects(client.endUsers.list({}, { signal: controller.signal }), /user gave up/);

  const { proxy, client: failing } = await through(() => ({ status: 503, headers: { "retry-after": "30" } }));
  const waiting = new AbortController();
  setTimeout(() => waiting.abort(new Error("no waiting")), 200);
  await assert.rejects(failing.endUsers.list({}, { signal: waiting.signal }), /no waiting/);
  assert.equal(proxy.attempts("GET /v1/end_users"), 1);
});

test("track() queue: a lost batch answer and a refused connection still store each call once", async () => {
  const { proxy, client } = await through((key, n) =>
    key === "POST /v1/usage/events/batch" ? (n === 1 ? "drop-after-forward" : n === 2 ? "drop" : "forward") : "forward",
  );
  const completion = (id) => ({
    id,
    object: "chat.completion",
    model: "gpt-4o-mini-2024-07-18",
    choices: [],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  });
  for (let i = 0; i < 5; i++) client.track(completion(`chatcmpl-fault-${i}`), { workflowId: "fault-queue" });
  const result = await client.flush();
  assert.equal(result.complete, true);
  assert.equal(result.sent, 5);
  assert.equal(proxy.attempts("POST /v1/usage/events/batch"), 3);
  const summary = await direct.usage.summary({ workflowId: "fault-queue" });
  assert.equal(summary.totalEvents, 5);
  assert.equal(summary.totalQuantity, 75);
  await client.shutdown();
});
