/**
 * Exact arithmetic on the service's decimal strings (`"4.5"`, `"0.000123"`), through BigInt sub-units: money
 * never goes through a binary float. `Number("0.1") + Number("0.2")` is `0.30000000000000004`;
 * `sumDecimalStrings(["0.1", "0.2"])` is `"0.3"`.
 */
import type { DecimalString } from "./types.js";

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

/** True for a plain-notation decimal string (`"12"`, `"-0.5"`, `"0.000001"`); no exponent, no spaces. */
export function isDecimalString(value: unknown): value is DecimalString {
  return typeof value === "string" && DECIMAL.test(value);
}

function parse(value: DecimalString): { units: bigint; scale: number } {
  const match = typeof value === "string" ? DECIMAL.exec(value) : null;
  if (match === null) throw new TypeError(`not a decimal string: ${JSON.stringify(value)}`);
  const fraction = match[3] ?? "";
  const units = BigInt(match[2]! + fraction);
  return { units: match[1] === "-" ? -units : units, scale: fraction.length };
}

function format(units: bigint, scale: number): DecimalString {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  let result = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  if (scale > 0) result = result.replace(/0+$/, "").replace(/\.$/, "");
  digits = result;
  return negative && digits !== "0" ? `-${digits}` : digits;
}

/**
 * The exact sum of decimal strings, in the service's notation (trailing zeros removed): `"0"` for none.
 * Throws TypeError on anything that is not a decimal string (a null cost is unknown, not zero: filter it
 * out, and count it, before summing).
 */
export function sumDecimalStrings(values: Iterable<DecimalString>): DecimalString {
  const parsed = Array.from(values, parse);
  const scale = parsed.reduce((max, value) => Math.max(max, value.scale), 0);
  let total = 0n;
  for (const value of parsed) total += value.units * 10n ** BigInt(scale - value.scale);
  return format(total, scale);
}

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b`, exactly. */
export function compareDecimalStrings(a: DecimalString, b: DecimalString): -1 | 0 | 1 {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  const left = x.units * 10n ** BigInt(scale - x.scale);
  const right = y.units * 10n ** BigInt(scale - y.scale);
  return left < right ? -1 : left > right ? 1 : 0;
}
