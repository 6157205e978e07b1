// The exact decimal helpers: sums that binary floats get wrong, in the service's notation.
import assert from "node:assert/strict";
import { test } from "node:test";

import sdk from "./support/sdk.mjs";

const { compareDecimalStrings, isDecimalString, sumDecimalStrings } = sdk;

test("sumDecimalStrings adds exactly, in plain notation without trailing zeros", () => {
  assert.notEqual(0.1 + 0.2, 0.3);
  assert.equal(sumDecimalStrings(["0.1", "0.2"]), "0.3");
  assert.equal(sumDecimalStrings([]), "0");
  assert.equal(sumDecimalStrings(["4.50", "0.50"]), "5");
  assert.equal(sumDecimalStrings(["0.000000000001", "999999.999999999999"]), "1000000");
  assert.equal(sumDecimalStrings(["-0.25", "0.25"]), "0");
  assert.equal(sumDecimalStrings(["-1.5", "0.25"]), "-1.25");
  // a million pico-dollar costs: a float sum drifts, the exact one does not
  const costs = Array.from({ length: 1_000_000 }, () => "0.000000000001");
  assert.equal(sumDecimalStrings(costs), "0.000001");
  assert.notEqual(costs.reduce((total, cost) => total + Number(cost), 0), 0.000001);
  // beyond 2^53 units
  assert.equal(sumDecimalStrings(["123456789012345678.000000000001", "0.000000000001"]), "123456789012345678.000000000002");
});

test("a null (unpriced) cost or a non-decimal is refused, never read as zero", () => {
  assert.throws(() => sumDecimalStrings(["1", null]), TypeError);
  assert.throws(() => sumDecimalStrings(["1e-7"]), TypeError);
  assert.throws(() => sumDecimalStrings([0.1]), TypeError);
  assert.equal(isDecimalString("0.000123"), true);
  assert.equal(isDecimalString("1e3"), false);
  assert.equal(isDecimalString(" 1"), false);
});

test("compareDecimalStrings orders exactly", () => {
  assert.equal(compareDecimalStrings("0.30", "0.3"), 0);
  assert.equal(compareDecimalStrings("0.000000000002", "0.000000000001"), 1);
  assert.equal(compareDecimalStrings("-1", "0.5"), -1);
  assert.equal(compareDecimalStrings("9007199254740993", "9007199254740992"), 1);
});
