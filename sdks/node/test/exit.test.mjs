// Nothing lost on a normal exit: a process that tracks calls and simply ends (no flush, no shutdown) has
// them delivered by the beforeExit hook. And the CommonJS build works the same as the ESM one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import sdk from "./support/sdk.mjs";
import { loadCassette } from "./support/cassettes.mjs";
import { serviceForTests } from "./support/service.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");

const fx = serviceForTests(sdk);

// the recorded REST body of an openai chat completion: the shape of the openai Node SDK's response object
const [recorded] = loadCassette("otel-python-contrib/openai/test_chat_completion_with_content.yaml");
const completion = JSON.parse(recorded.body);

function run(code, type) {
  const args = type === "module" ? ["--input-type=module", "-e", code] : ["-e", code];
  const result = spawnSync(process.execPath, args, {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, BEARLUMEN_API_KEY: fx.service.apiKey, BEARLUMEN_BASE_URL: fx.service.baseUrl, COMPLETION: JSON.stringify(completion) },
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

test("a process that ends normally delivers what it tracked (ESM)", async () => {
  run(
    `import { BearLumen } from "@bearlumen/node-sdk";
     const client = new BearLumen({ flushInterval: 60000 });
     const completion = JSON.parse(process.env.COMPLETION);
     for (let i = 0; i < 3; i++) client.track({ ...completion, id: "exit-esm-" + i }, { workflowId: "exit-esm" });`,
    "module",
  );
  const summary = await fx.client.usage.summary({ workflowId: "exit-esm" });
  assert.equal(summary.totalEvents, 3);
  assert.equal(summary.totalQuantity, 3 * completion.usage.total_tokens);
});

test("the CommonJS build: the same classes, the same delivery at exit", async () => {
  const out = run(
    `const { BearLumen, NotFoundError, BearLumenError, sumDecimalStrings } = require("@bearlumen/node-sdk");
     const client = new BearLumen({ flushInterval: 60000 });
     const completion = JSON.parse(process.env.COMPLETION);
     client.track({ ...completion, id: "exit-cjs" }, { workflowId: "exit-cjs" });
     client.endUsers.retrieve("eu_" + "0".repeat(24)).catch((e) => {
       console.log(JSON.stringify([e instanceof NotFoundError, e instanceof BearLumenError, e.status, e.code, sumDecimalStrings(["0.1", "0.2"])]));
     });`,
    "commonjs",
  );
  assert.deepEqual(JSON.parse(out), [true, true, 404, "not_found", "0.3"]);
  const events = (await fx.client.usage.query({ workflowId: "exit-cjs" })).events;
  assert.equal(events.length, 1);
  assert.equal(events[0].quantity, completion.usage.total_tokens);
});

test("a service that cannot be reached at exit: the process still ends, and says what was not delivered", () => {
  const result = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { BearLumen } from "@bearlumen/node-sdk";
       const client = new BearLumen({ baseUrl: "http://127.0.0.1:9", maxRetries: 0 });
       client.track(JSON.parse(process.env.COMPLETION));`,
    ],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, BEARLUMEN_API_KEY: fx.service.apiKey, COMPLETION: JSON.stringify(completion) }, timeout: 30_000 },
  );
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /1 tracked events could not be delivered before exit/);
});
