/**
 * Client configuration: API key, base URL, timeout and retries, from the options, then the environment.
 *
 * | setting  | option       | environment variable              | default                       |
 * |----------|--------------|-----------------------------------|-------------------------------|
 * | API key  | `apiKey`     | `BEARLUMEN_API_KEY`               | none: AuthenticationError     |
 * | service  | `baseUrl`    | `BEARLUMEN_BASE_URL`              | `http://127.0.0.1:8787`       |
 * | timeout  | `timeout` ms | `BEARLUMEN_TIMEOUT` (seconds, as the Python SDK reads it) | 30000 ms |
 * | retries  | `maxRetries` | `BEARLUMEN_MAX_RETRIES`           | 2 (3 attempts in all)         |
 */
import { AuthenticationError } from "./errors.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8787";
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RETRIES = 2;

export interface ClientOptions {
  /** Your key (`blm_...`); defaults to the `BEARLUMEN_API_KEY` environment variable. */
  apiKey?: string;
  /** The service, default `BEARLUMEN_BASE_URL` or `http://127.0.0.1:8787` (what `bearlumen serve` listens on). */
  baseUrl?: string;
  /** Milliseconds per attempt (default 30000). */
  timeout?: number;
  /** Retries after a failed attempt (default 2); 0 disables them. */
  maxRetries?: number;
  /** A `fetch` of your own (proxies, instrumentation); the global one by default. */
  fetch?: typeof fetch;
}

export interface ResolvedConfig {
  apiKey: string;
  baseUrl: string;
  timeout: number;
  maxRetries: number;
  fetch: typeof fetch;
}

const MISSING_KEY_MESSAGE =
  "No API key provided. Pass it as new BearLumen({ apiKey: 'blm_...' }) or set the BEARLUMEN_API_KEY " +
  "environment variable. Create a key with `bearlumen keys create --tenant <name>` on the machine that " +
  "runs the service.";

function env(name: string): string | undefined {
  const value = typeof process !== "undefined" ? process.env[name] : undefined;
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function envNumber(name: string): number | undefined {
  const raw = env(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new TypeError(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

/** An http(s) origin without the trailing `/` or `/v1`. */
export function normalizeBaseUrl(url: string): string {
  let value = url.trim();
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new TypeError(`baseUrl must be an http(s) URL of the service (e.g. ${DEFAULT_BASE_URL}), got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(
      `baseUrl must be an http(s) URL of the service (e.g. ${DEFAULT_BASE_URL}); the embedded (database URL) ` +
        `mode exists only in the Python SDK. Got ${JSON.stringify(url)}`,
    );
  }
  value = value.replace(/\/+$/, "");
  if (value.endsWith("/v1")) value = value.slice(0, -3);
  return value;
}

export function resolveConfig(options: ClientOptions = {}): ResolvedConfig {
  const key = (options.apiKey ?? env("BEARLUMEN_API_KEY") ?? "").trim();
  if (!key) throw new AuthenticationError(MISSING_KEY_MESSAGE, { code: "missing_api_key" });
  const baseUrl = normalizeBaseUrl(options.baseUrl ?? env("BEARLUMEN_BASE_URL") ?? DEFAULT_BASE_URL);
  const envTimeout = envNumber("BEARLUMEN_TIMEOUT");
  const timeout = options.timeout ?? (envTimeout === undefined ? DEFAULT_TIMEOUT_MS : envTimeout * 1000);
  if (typeof timeout !== "number" || !(timeout > 0) || !Number.isFinite(timeout)) {
    throw new TypeError(`timeout must be a positive number of milliseconds, got ${String(timeout)}`);
  }
  const maxRetries = options.maxRetries ?? envNumber("BEARLUMEN_MAX_RETRIES") ?? DEFAULT_MAX_RETRIES;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new TypeError(`maxRetries must be an integer >= 0, got ${String(maxRetries)}`);
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== "function") {
    throw new TypeError("No global fetch: Node.js 18 or newer is required (or pass options.fetch)");
  }
  return { apiKey: key, baseUrl, timeout, maxRetries, fetch: fetchImpl };
}

/** A display form of a key that is safe to log: `blm_abcd…`. */
export function maskKey(apiKey: string): string {
  return apiKey.length > 12 ? `${apiKey.slice(0, 8)}…` : "…";
}
