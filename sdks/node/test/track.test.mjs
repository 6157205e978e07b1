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

test("openai chat.completions: exact tokens, unpriced (never 0), the response returned as is", async () => {
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
  assert.equal(event.providerCostUsd, null);
  assert.equal(event.metadata.pricing_status, "unpriced");
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

test("unpriced Node events carry what `bearlumen reprice --apply` prices: exactly the Python price book's cost", async () => {
  const chat = openai("openinference/openai/test_cached_tokens.yaml");
  for (let i = 0; i < 2; i++) {
    const response = await chat.chat.completions.create({ model: "gpt-4o-mini", messages });
    bearlumen.track({ ...response, id: `${response.id}-reprice` }, { workflowId: "reprice" });
  }
  const message = await anthropic("openinference/anthropic/test_anthropic_instrumentation_messages_token_counts.yaml").messages.create({
    model: "claude-3-7-sonnet-20250219",
    max_tokens: 1024,
    messages,
  });
  bearlumen.track({ ...message, id: `${message.id}-reprice` }, { workflowId: "reprice" });
  const before = await stored("reprice");
  assert.equal(before.length, 3);
  assert.ok(before.every((e) => e.providerCostUsd === null));
  assert.equal((await bearlumen.usage.summary({ workflowId: "reprice" })).totalCost, null);

  // what the Python SDK's price book says each call costs (computed apart from the service)
  const python = spawnSync(
    service.python,
    [
      "-c",
      `import json, sys
from datetime import datetime
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import TokenUsage
from bearlumen.metering.event import _plain
book = PriceBook.from_config(None)
out = []
for e in json.load(sys.stdin):
    m = e["metadata"]
    at = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
    price = book.price(m["provider"], m["model"], TokenUsage.from_metadata(m), at)
    out.append(_plain(price.cost_usd))
print(json.dumps(out))`,
    ],
    { input: JSON.stringify(before), encoding: "utf8" },
  );
  assert.equal(python.status, 0, python.stderr);
  const expected = JSON.parse(python.stdout);

  const day = (offset) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
  service.cli(["reprice", "--since", day(-1), "--until", day(2), "--apply"]);
  const after = (await bearlumen.usage.query({ workflowId: "reprice" })).events;
  assert.deepEqual(after.map((e) => e.providerCostUsd), expected);
  assert.ok(expected.every((cost) => cost !== "0" && /^\d+\.\d+$/.test(cost)), expected.join());
  assert.equal((await bearlumen.usage.summary({ workflowId: "reprice" })).totalCost, sdk.sumDecimalStrings(expected));
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
