// track() on responses and streams of the real openai / anthropic Node SDKs, fed the recorded provider answers
// (tests/cassettes), recorded through the background queue into a real `bearlumen serve`: exact tokens.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";

import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

import sdk from "./support/sdk.mjs";
import { replayFetch } from "./support/cassettes.mjs";
import { startService } from "./support/service.mjs";

const { BearLumen } = sdk;

let service;
let bearlumen;
const problems = [];

before(async () => {
  service = await startService();
  bearlumen = new BearLumen({
    apiKey: service.apiKey,
    baseUrl: service.baseUrl,
    onError: (error, context) => problems.push({ error, context }),
  });
});

after(async () => {
  await bearlumen?.shutdown();
  await service?.stop();
});

const openai = (cassette) => new OpenAI({ apiKey: "test", maxRetries: 0, fetch: replayFetch(cassette) });
const anthropic = (cassette) => new Anthropic({ apiKey: "test", maxRetries: 0, fetch: replayFetch(cassette) });
const messages = [{ role: "user", content: "Say this is a test" }];

/** The events stored for a workflow, oldest first, after the queue is flushed. */
async function stored(workflowId) {
  const flushed = await bearlumen.flush();
  assert.equal(flushed.complete, true);
  return (await bearlumen.usage.query({ workflowId })).events;
}

function buckets(event) {
  const m = event.metadata;
  return {
    input: m.input_tokens,
    cacheRead: m.cache_read_tokens,
    cacheWrite: m.cache_write_tokens,
    cacheWrite1h: m.cache_write_1h_tokens,
    output: m.output_tokens,
    reasoning: m.reasoning_tokens,
    total: m.total_tokens,
  };
}

const zero = { cacheRead: 0, cacheWrite: 0, cacheWrite1h: 0, reasoning: 0 };

test("openai chat.completions: exact tokens, priced by the service, the response returned as is", async () => {
  const response = await openai("otel-python-contrib/openai/test_chat_completion_with_content.yaml").chat.completions.create({
    model: "gpt-4o-mini",
    messages,
  });
  assert.equal(bearlumen.track(response, { workflowId: "chat", agentId: "bot" }), response);
  const [event] = await stored("chat");
  assert.equal(event.quantity, 17);
  assert.deepEqual(buckets(event), { ...zero, input: 12, output: 5, total: 17 });
  assert.equal(event.eventType, "token_usage");
  assert.equal(event.metricName, "llm_tokens");
  assert.equal(event.agentId, "bot");
  assert.equal(event.metadata.pricing_status, "priced"); // sent "pending": priced at ingest (exact value: below)
  assert.match(event.providerCostUsd, /^0\.\d+$/);
  assert.equal(event.metadata.provider_cost_usd, event.providerCostUsd);
  assert.equal(event.metadata.provider, "openai");
  assert.equal(event.metadata.operation, "chat.completions");
  assert.equal(event.metadata.model, "gpt-4o-mini-2024-07-18");
  assert.equal(event.metadata.response_id, response.id);
  assert.equal(event.metadata.streamed, false);
  assert.equal(event.metadata.usage_source, "response");
  const digest = createHash("sha256").update(`openai:${response.id}`).digest("hex").slice(0, 40);
  assert.equal(event.idempotencyKey, `llm_${digest}`);
});

test("the idempotency key is the Python SDK's for the same response: tracked twice, stored once", async () => {
  const response = await openai("otel-python-contrib/openai/test_async_chat_completion_with_content.yaml").chat.completions.create({
    model: "gpt-4o-mini",
    messages,
  });
  bearlumen.track(response, { workflowId: "twice" });
  bearlumen.track(response, { workflowId: "twice" });
  const events = await stored("twice");
  assert.equal(events.length, 1);
  const python = spawnSync(
    service.python,
    [
      "-c",
      "import sys; from bearlumen.metering.event import idempotency_key; from bearlumen.metering.record import LLMCall;" +
        "print(idempotency_key(LLMCall(integration='openai', provider='openai', operation='chat.completions'," +
        " model_requested=None, model=None, usage=None, response_id=sys.argv[1])))",
      response.id,
    ],
    { encoding: "utf8" },
  );
  assert.equal(python.status, 0, python.stderr);
  assert.equal(events[0].idempotencyKey, python.stdout.trim());
});

test("openai cached prompt tokens: uncached input and cache reads in their own buckets", async () => {
  const client = openai("openinference/openai/test_cached_tokens.yaml");
  for (let i = 0; i < 2; i++) {
    bearlumen.track(await client.chat.completions.create({ model: "gpt-4o-mini", messages }), { workflowId: "cached" });
  }
  const events = await stored("cached");
  assert.deepEqual(events.map(buckets).sort((a, b) => a.total - b.total), [
    { ...zero, input: 1370, output: 22, total: 1392 },
    { ...zero, input: 90, cacheRead: 1280, output: 155, total: 1525 },
  ]);
});

test("openai chat stream with include_usage: the caller sees every chunk; recorded at the end", async () => {
  const cassette = "otel-python-contrib/openai/test_chat_completion_streaming.yaml";
  const request = { model: "gpt-4", messages, stream: true, stream_options: { include_usage: true } };
  const plain = [];
  for await (const chunk of await openai(cassette).chat.completions.create(request)) plain.push(chunk);

  const stream = await openai(cassette).chat.completions.create(request);
  const tracked = bearlumen.track(stream, { workflowId: "chat-stream" });
  assert.ok(tracked instanceof stream.constructor, "the stream keeps its class");
  assert.equal(typeof tracked.toReadableStream, "function");
  assert.equal(tracked.controller, stream.controller);
  const seen = [];
  for await (const chunk of tracked) seen.push(chunk);
  assert.deepEqual(seen, plain);
  const [event] = await stored("chat-stream");
  assert.deepEqual(buckets(event), { ...zero, input: 12, output: 5, total: 17 });
  assert.equal(event.metadata.model, "gpt-4-0613");
  assert.equal(event.metadata.streamed, true);
  assert.equal(event.metadata.usage_source, "stream");
});

test("a stream left early is recorded once: the usage seen so far (stream_partial), or none", async () => {
  const stream = await anthropic("openinference/anthropic/test_anthropic_instrumentation_async_messages_streaming.yaml").messages.create({
    model: "claude-sonnet-4-6",
    max_tokens: 1024,
    messages,
    stream: true,
  });
  let n = 0;
  for await (const _event of bearlumen.track(stream, { workflowId: "partial" })) {
    if (++n === 2) break; // after message_start: the input is known, the output so far is what it says
  }
  const [event, ...more] = await stored("partial");
  assert.equal(more.length, 0);
  assert.equal(event.metadata.usage_source, "stream_partial");
  assert.deepEqual(buckets(event), { ...zero, input: 21, output: 7, total: 28 });

  const chat = await openai("otel-python-contrib/openai/test_chat_completion_multiple_choices_streaming.yaml").chat.completions.create({
    model: "gpt-4o-mini",
    messages,
    stream: true,
  });
  n = 0;
  for await (const _chunk of bearlumen.track(chat, { workflowId: "partial-chat" })) {
    if (++n === 2) break; // the usage chunk is the last one: never reached
  }
  const [unknown] = await stored("partial-chat");
  assert.equal(unknown.metadata.usage_source, "unavailable");
  assert.equal(unknown.quantity, 0);
  assert.equal(unknown.metadata.streamed, true);
});

test("openai responses, plain and streamed, and reasoning tokens", async () => {
  const response = await openai("otel-python-contrib/openai/test_responses_create_basic[content_mode0].yaml").responses.create({
    model: "gpt-4o-mini",
    input: "Say this is a test",
  });
  bearlumen.track(response, { workflowId: "responses" });
  const stream = await openai("otel-python-contrib/openai/test_responses_create_streaming[content_mode0].yaml").responses.create({
    model: "gpt-4o-mini",
    input: "Say this is a test",
    stream: true,
  });
  let events = 0;
  for await (const _event of bearlumen.track(stream, { workflowId: "responses-stream" })) events++;
  assert.ok(events > 3);
  const reasoning = await openai(
    "otel-python-contrib/openai/test_responses_create_reports_reasoning_tokens[content_mode0].yaml",
  ).responses.create({ model: "gpt-5.4", input: "think" });
  bearlumen.track(reasoning, { workflowId: "responses-reasoning" });

  const [plain] = await stored("responses");
  assert.deepEqual(buckets(plain), { ...zero, input: 22, output: 6, total: 28 });
  assert.equal(plain.metadata.operation, "responses");
  const [streamed] = await stored("responses-stream");
  assert.deepEqual(buckets(streamed), { ...zero, input: 22, output: 6, total: 28 });
  assert.equal(streamed.metadata.usage_source, "stream");
  const [thought] = await stored("responses-reasoning");
  assert.deepEqual(buckets(thought), { ...zero, input: 44, output: 288, reasoning: 9, total: 332 });
});

test("anthropic messages: cache writes and cache reads", async () => {
  const client = anthropic("openinference/anthropic/test_anthropic_instrumentation_messages_token_counts.yaml");
  for (let i = 0; i < 2; i++) {
    const message = await client.messages.create({ model: "claude-3-7-sonnet-20250219", max_tokens: 1024, messages });
    assert.equal(bearlumen.track(message, { workflowId: "anthropic" }), message);
  }
  const events = await stored("anthropic");
  assert.deepEqual(events.map(buckets).sort((a, b) => a.output - b.output), [
    { ...zero, input: 21, cacheWrite: 1733, output: 561, total: 21 + 1733 + 561 },
    { ...zero, input: 21, cacheRead: 1733, output: 568, total: 21 + 1733 + 568 },
  ]);
  assert.equal(events[0].metadata.provider, "anthropic");
  assert.equal(events[0].metadata.operation, "messages");
  assert.equal(events[0].metadata.model, "claude-3-7-sonnet-20250219");
});

test("anthropic stream: message_start and the cumulative message_delta merged", async () => {
  const client = anthropic("openllmetry/anthropic/test_anthropic_prompt_caching_stream_legacy.yaml");
  for (let i = 0; i < 2; i++) {
    const stream = await client.messages.create({ model: "claude-sonnet-4-5", max_tokens: 1024, messages, stream: true });
    const types = [];
    for await (const event of bearlumen.track(stream, { workflowId: "anthropic-stream" })) types.push(event.type);
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
  }
  const events = await stored("anthropic-stream");
  assert.deepEqual(events.map(buckets).sort((a, b) => a.output - b.output), [
    { ...zero, input: 4, cacheWrite: 1165, output: 201, total: 4 + 1165 + 201 },
    { ...zero, input: 4, cacheRead: 1165, output: 221, total: 4 + 1165 + 221 },
  ]);
  assert.ok(events.every((e) => e.metadata.usage_source === "stream"));
});

test("a known cost is recorded as given; an unknown shape is reported, never thrown", async () => {
  const response = await openai("otel-python-contrib/openai/test_chat_completion_with_content.yaml").chat.completions.create({
    model: "gpt-4o-mini",
    messages,
  });
  bearlumen.track({ ...response, id: "chatcmpl-costed" }, { workflowId: "costed", costUsd: "0.000123456789" });
  const [event] = await stored("costed");
  assert.equal(event.providerCostUsd, "0.000123456789");
  assert.equal(event.metadata.pricing_status, "caller_price");

  const before = problems.length;
  const odd = { hello: "world" };
  assert.equal(bearlumen.track(odd), odd);
  assert.equal(bearlumen.track(null), null);
  assert.equal(bearlumen.track({ ...response, id: "chatcmpl-bad-cost" }, { costUsd: 0.1 }).id, "chatcmpl-bad-cost");
  assert.equal(problems.length - before, 3);
  assert.equal(bearlumen.pending, 0);
});

test("tracked events are priced at ingest: exactly the Python price book's cost and pricing fields", async () => {
  const chat = openai("openinference/openai/test_cached_tokens.yaml");
  for (let i = 0; i < 2; i++) {
    const response = await chat.chat.completions.create({ model: "gpt-4o-mini", messages });
    bearlumen.track({ ...response, id: `${response.id}-priced` }, { workflowId: "priced" });
  }
  const message = await anthropic("openinference/anthropic/test_anthropic_instrumentation_messages_token_counts.yaml").messages.create({
    model: "claude-3-7-sonnet-20250219",
    max_tokens: 1024,
    messages,
  });
  bearlumen.track({ ...message, id: `${message.id}-priced` }, { workflowId: "priced" });
  const reasoning = await openai(
    "otel-python-contrib/openai/test_responses_create_reports_reasoning_tokens[content_mode0].yaml",
  ).responses.create({ model: "gpt-5.4", input: "think" });
  bearlumen.track({ ...reasoning, id: `${reasoning.id}-priced` }, { workflowId: "priced" });
  bearlumen.track({ ...message, id: `${message.id}-unknown` }, { workflowId: "priced", model: "acme-model-nobody-prices" });
  // served tiers: OpenAI priority has its own price; Anthropic's batch price is not in the data for this model
  const plain = await openai("otel-python-contrib/openai/test_chat_completion_with_content.yaml").chat.completions.create({
    model: "gpt-4o-mini",
    messages,
  });
  bearlumen.track({ ...plain, id: `${plain.id}-standard` }, { workflowId: "priced" });
  bearlumen.track({ ...plain, id: `${plain.id}-priority`, service_tier: "priority" }, { workflowId: "priced" });
  bearlumen.track({ ...message, id: `${message.id}-batch`, usage: { ...message.usage, service_tier: "batch" } }, { workflowId: "priced" });
  const events = await stored("priced");
  assert.equal(events.length, 8);

  // What the Python SDK puts on the event of each call: its own event builder and a price book that takes
  // genai-prices' whole path (no cached rates), computed apart from the service, at the event's timestamp.
  const python = spawnSync(
    service.python,
    [
      "-c",
      `import json, sys
from datetime import datetime
from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage
book = PriceBook(cache=False)
fields = ("pricing_status", "pricing_source", "pricing_model", "pricing_provider", "provider_cost_usd")
out = []
for e in json.load(sys.stdin):
    m = e["metadata"]
    at = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
    call = LLMCall(integration="node", provider=m["provider"], operation=m["operation"], model_requested=None,
                   model=m["model"], usage=TokenUsage.from_metadata(m), timestamp=at, tier=m.get("tier"))
    built = build_event(call, book, "k")["metadata"]
    out.append({name: built[name] for name in fields if name in built})
print(json.dumps(out))`,
    ],
    { input: JSON.stringify(events), encoding: "utf8" },
  );
  assert.equal(python.status, 0, python.stderr);
  const expected = JSON.parse(python.stdout);
  const fields = ["pricing_status", "pricing_source", "pricing_model", "pricing_provider", "provider_cost_usd"];
  const pricing = (e) => Object.fromEntries(fields.filter((name) => name in e.metadata).map((name) => [name, e.metadata[name]]));
  assert.deepEqual(events.map(pricing), expected);
  assert.deepEqual(events.map((e) => e.providerCostUsd), expected.map((p) => p.provider_cost_usd ?? null));

  const costs = expected.flatMap((p) => (p.provider_cost_usd === undefined ? [] : [p.provider_cost_usd]));
  assert.equal(costs.length, 6, JSON.stringify(expected));
  assert.ok(costs.every((cost) => cost !== "0" && /^\d+\.\d+$/.test(cost)), costs.join());
  const unknown = events.find((e) => e.metadata.model === "acme-model-nobody-prices");
  assert.equal(unknown.providerCostUsd, null); // never 0
  assert.deepEqual([unknown.metadata.pricing_status, unknown.metadata.pricing_source], ["unpriced", "model not in price data"]);
  const byId = (suffix) => events.find((e) => e.metadata.response_id.endsWith(suffix));
  assert.equal(byId("-priority").metadata.tier, "priority");
  assert.equal(sdk.compareDecimalStrings(byId("-priority").providerCostUsd, byId("-standard").providerCostUsd), 1);
  const batch = byId("-batch");
  assert.equal(batch.providerCostUsd, null);
  assert.match(batch.metadata.pricing_source, /^no price for tier 'batch' of claude-3-7-sonnet/);
  const summary = await bearlumen.usage.summary({ workflowId: "priced" });
  assert.equal(summary.totalCost, sdk.sumDecimalStrings(costs));
  assert.equal(summary.unpricedEventCount, 2);
});

test("an un-awaited call is recorded when it resolves; the very promise comes back", async () => {
  const client = openai("otel-python-contrib/openai/test_chat_completion_tool_calls_with_content.yaml");
  const promise = client.chat.completions.create({ model: "gpt-4o-mini", messages });
  assert.equal(bearlumen.track(promise, { workflowId: "promise" }), promise);
  const { data, response } = await promise.withResponse();
  assert.equal(response.status, 200);
  assert.equal(data.usage.total_tokens, 126);
  const [event] = await stored("promise");
  assert.deepEqual(buckets(event), { ...zero, input: 75, output: 51, total: 126 });

  const failing = openai("otel-python-contrib/openai/test_chat_completion_404.yaml").chat.completions.create({
    model: "this-model-does-not-exist",
    messages,
  });
  bearlumen.track(failing, { workflowId: "promise-404" });
  await assert.rejects(failing, (error) => error.status === 404);
  assert.equal((await stored("promise-404")).length, 0);
});

test("an event the service refuses is set aside; the rest of its batch is stored", async () => {
  const response = await openai("otel-python-contrib/openai/test_chat_completion_with_content.yaml").chat.completions.create({
    model: "gpt-4o-mini",
    messages,
  });
  const before = problems.length;
  bearlumen.track({ ...response, id: "chatcmpl-good-1" }, { workflowId: "quarantine" });
  bearlumen.track({ ...response, id: "chatcmpl-bad" }, { workflowId: "quarantine", model: "m".repeat(300) }); // model: 1..255
  bearlumen.track({ ...response, id: "chatcmpl-good-2" }, { workflowId: "quarantine" });
  const result = await bearlumen.flush();
  assert.deepEqual(result, { complete: true, pending: 0, sent: 2, quarantined: 1, dropped: 0 });
  const events = (await bearlumen.usage.query({ workflowId: "quarantine" })).events;
  assert.deepEqual(events.map((e) => e.metadata.response_id).sort(), ["chatcmpl-good-1", "chatcmpl-good-2"]);
  assert.equal(problems.slice(before).filter((p) => p.context === "quarantined").length, 1);
  assert.equal(problems.at(-1).error.code, "invalid_batch");
});
