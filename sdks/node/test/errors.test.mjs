// Every error class from a real answer of `bearlumen serve` (or, for NetworkError, a real refused
// connection), with status, code and requestId as the service sent them.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import sdk from "./support/sdk.mjs";
import { freePort, startService } from "./support/service.mjs";

const {
  AuthenticationError,
  BearLumen,
  BearLumenError,
  DuplicateCustomerError,
  InvalidEmailError,
  InvalidRequestError,
  NetworkError,
  NotFoundError,
  RateLimitError,
} = sdk;

let service;
let limited;
let client;

before(async () => {
  [service, limited] = await Promise.all([startService(), startService({ args: ["--rate-limit", "1"] })]);
  client = new BearLumen({ apiKey: service.apiKey, baseUrl: service.baseUrl, maxRetries: 0 });
});

after(async () => {
  await Promise.all([service?.stop(), limited?.stop()]);
});

async function rejects(promise, cls, fields) {
  const error = await promise.then(
    () => assert.fail(`expected ${cls.name}`),
    (e) => e,
  );
  assert.ok(error instanceof cls, `${error?.name}: ${error?.message}`);
  assert.ok(error instanceof BearLumenError);
  assert.ok(error instanceof Error);
  assert.equal(error.name, cls.name);
  for (const [name, value] of Object.entries(fields)) assert.equal(error[name], value, name);
  return error;
}

test("AuthenticationError: a wrong key, answered 401 by the service", async () => {
  const wrong = new BearLumen({ apiKey: "blm_" + "x".repeat(43), baseUrl: service.baseUrl });
  const error = await rejects(wrong.endUsers.list(), AuthenticationError, { status: 401, code: "authentication_failed" });
  assert.match(error.requestId, /^req_/);
  assert.ok(!error.message.includes("x".repeat(43)), "the key is never in a message");
  const ping = await wrong.ping();
  assert.equal(ping.ok, false);
  assert.ok(ping.error instanceof AuthenticationError);
});

test("AuthenticationError: no key at all", () => {
  const saved = process.env.BEARLUMEN_API_KEY;
  delete process.env.BEARLUMEN_API_KEY;
  try {
    assert.throws(() => new BearLumen({ baseUrl: service.baseUrl }), (e) => e instanceof AuthenticationError && e.code === "missing_api_key");
  } finally {
    if (saved !== undefined) process.env.BEARLUMEN_API_KEY = saved;
  }
});

test("the environment supplies the key and the base URL", async () => {
  const saved = [process.env.BEARLUMEN_API_KEY, process.env.BEARLUMEN_BASE_URL];
  process.env.BEARLUMEN_API_KEY = service.apiKey;
  process.env.BEARLUMEN_BASE_URL = service.baseUrl + "/v1/";
  try {
    const fromEnv = new BearLumen();
    assert.equal(fromEnv.baseUrl, service.baseUrl);
    assert.equal((await fromEnv.endUsers.list()).total, (await client.endUsers.list()).total);
  } finally {
    for (const [name, value] of [["BEARLUMEN_API_KEY", saved[0]], ["BEARLUMEN_BASE_URL", saved[1]]]) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});

test("NotFoundError: an unknown end user, and another tenant's", async () => {
  await rejects(client.endUsers.retrieve("eu_" + "0".repeat(24)), NotFoundError, { status: 404, code: "not_found" });
  const other = new BearLumen({ apiKey: service.createKey("other-tenant"), baseUrl: service.baseUrl });
  const { endUser } = await other.endUsers.create({ externalId: "theirs" });
  await rejects(client.endUsers.deactivate(endUser.id), NotFoundError, { status: 404 });
  await rejects(client.subscriptions.retrieve("sub_missing"), NotFoundError, { status: 404 });
});

test("DuplicateCustomerError: the same external id twice", async () => {
  await client.endUsers.create({ externalId: "dup" });
  const error = await rejects(client.endUsers.create({ externalId: "dup" }), DuplicateCustomerError, {
    status: 409,
    code: "duplicate_external_id",
  });
  assert.match(error.requestId, /^req_/);
});

test("InvalidEmailError: from the service (a@b has no dot) and from the client-side check", async () => {
  await rejects(client.endUsers.create({ externalId: "mail", email: "a@b" }), InvalidEmailError, {
    status: 400,
    code: "invalid_email",
    param: "email",
  });
  await rejects(client.endUsers.create({ externalId: "mail", email: "not an email" }), InvalidEmailError, {
    status: null,
    code: "invalid_email",
  });
  assert.equal((await client.endUsers.list()).endUsers.filter((u) => u.externalId === "mail").length, 0);
});

test("InvalidRequestError: invalid quantity, limit, date, unknown field, invalid batch", async () => {
  const event = { eventType: "t", metricName: "m" };
  await rejects(client.usage.record({ ...event, quantity: 1.0000001 }), InvalidRequestError, {
    status: 400,
    code: "invalid_quantity",
  });
  await rejects(client.endUsers.list({ limit: 0 }), InvalidRequestError, { status: 400, code: "invalid_limit" });
  await rejects(
    client.costAttribution.byAgent({ startDate: "2024-02-01", endDate: "2024-01-01" }),
    InvalidRequestError,
    { status: 400, code: "invalid_date" },
  );
  await rejects(client.usage.record({ ...event, quantity: 1, agentid: "typo" }), InvalidRequestError, {
    status: 400,
    code: "invalid_request",
    param: "agentid",
  });
  const error = await rejects(
    client.usage.recordBatch([
      { ...event, quantity: 1, idempotencyKey: "ok-1" },
      { ...event, quantity: 1, timestamp: "yesterday" },
    ]),
    InvalidRequestError,
    { status: 400, code: "invalid_batch" },
  );
  assert.deepEqual(error.errors.map((e) => [e.index, e.code]), [[1, "invalid_timestamp"]]);
  assert.equal((await client.usage.query({ eventType: "t" })).total, 0, "a rejected batch writes nothing");
  await rejects(client.usage.recordBatch([]), InvalidRequestError, { code: "invalid_request", status: null });
  const tooMany = Array.from({ length: 1001 }, () => ({ ...event, quantity: 1 }));
  await rejects(client.usage.recordBatch(tooMany), InvalidRequestError, { code: "batch_too_large" });
  await rejects(client.usage.record({ ...event, quantity: -1 }), InvalidRequestError, { code: "invalid_quantity", status: null });
  await rejects(client.usage.record({ ...event, quantity: Number.NaN }), InvalidRequestError, { code: "invalid_quantity" });
});

test("RateLimitError: the service's 429 with retryAfter from Retry-After", async () => {
  const hurried = new BearLumen({ apiKey: limited.apiKey, baseUrl: limited.baseUrl, maxRetries: 0 });
  let error;
  for (let i = 0; i < 10 && !error; i++) {
    try {
      await hurried.endUsers.list();
    } catch (e) {
      error = e;
    }
  }
  assert.ok(error instanceof RateLimitError, String(error));
  assert.equal(error.status, 429);
  assert.equal(error.code, "rate_limited");
  assert.ok(Number.isInteger(error.retryAfter) && error.retryAfter >= 1, `retryAfter ${error.retryAfter}`);
  // with retries, the SDK waits as asked and gets through
  const patient = new BearLumen({ apiKey: limited.apiKey, baseUrl: limited.baseUrl, maxRetries: 3 });
  assert.equal((await patient.endUsers.list()).total, 0);
});

test("NetworkError: nothing listens on the port", async () => {
  const port = await freePort();
  const offline = new BearLumen({ apiKey: service.apiKey, baseUrl: `http://127.0.0.1:${port}`, maxRetries: 1 });
  const error = await rejects(offline.endUsers.list(), NetworkError, { status: null, code: "connection_error", requestId: null });
  assert.match(error.message, /after 2 attempts/);
  assert.doesNotMatch(error.message, /may have processed/);
});

test("an AbortSignal stops the call", async () => {
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assert.rejects(client.endUsers.list({}, { signal: controller.signal }), /stop/);
});
