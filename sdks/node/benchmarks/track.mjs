// What track() costs the caller's turn: building the event (token buckets, the sha256 idempotency key) and
// queueing it; no I/O happens there. Measured against a baseline in the same run, interleaved (baseline
// round, tracked round, ...), medians of the per-call times of each round. The service is not needed: the
// queue is never sent (a huge flush interval; nothing is delivered at exit: the client points nowhere).
//     node benchmarks/track.mjs [rounds] [calls per round]
import { performance } from "node:perf_hooks";

import { BearLumen } from "@bearlumen/node-sdk";

const rounds = Number(process.argv[2] ?? 21);
const calls = Number(process.argv[3] ?? 20_000);
const client = new BearLumen({
  apiKey: "blm_benchmark_key_not_used_for_anything",
  baseUrl: "http://127.0.0.1:9",
  flushInterval: 3_600_000,
  maxQueueSize: rounds * calls + 1,
  onError: () => {},
});

const completion = {
  id: "chatcmpl-bench",
  object: "chat.completion",
  model: "gpt-4o-mini-2024-07-18",
  choices: [{ index: 0, message: { role: "assistant", content: "This is a test." }, finish_reason: "stop" }],
  usage: { prompt_tokens: 1370, completion_tokens: 155, total_tokens: 1525, prompt_tokens_details: { cached_tokens: 1280 } },
};
const responses = Array.from({ length: calls }, (_, i) => ({ ...completion, id: `chatcmpl-bench-${i}` }));
let sink = 0;
const baseline = (response) => {
  sink += response.usage.total_tokens; // what an app does with a response anyway: read it
  return response;
};

function round(fn) {
  const start = performance.now();
  for (const response of responses) fn(response);
  return ((performance.now() - start) * 1000) / calls; // µs per call
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const base = [];
const tracked = [];
round(baseline);
round((r) => client.track(r));
for (let i = 0; i < rounds; i++) {
  base.push(round(baseline));
  tracked.push(round((r) => client.track(baseline(r), { agentId: "bench" })));
}
const b = median(base);
const t = median(tracked);
console.log(`baseline ${b.toFixed(3)} µs/call, with track() ${t.toFixed(3)} µs/call: +${(t - b).toFixed(2)} µs per call (median of ${rounds} rounds of ${calls}; sink ${sink > 0})`);
console.log(`queued: ${client.pending}`);
process.exit(0); // the queue is not meant to be delivered (the client points nowhere)
