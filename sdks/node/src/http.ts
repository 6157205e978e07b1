/**
 * The HTTP layer under BearLumen: native fetch, retries, error mapping (mirrors bearlumen/_http.py).
 *
 * Retry policy (`maxRetries` retries after the first attempt, 2 by default):
 *
 * | failure                                           | retried?                                        |
 * |---------------------------------------------------|-------------------------------------------------|
 * | connection refused, DNS, connect timeout          | always (the request never left)                 |
 * | 408, 429, 5xx answer                              | always (a failed request wrote nothing: api.md) |
 * | timeout waiting for the answer, connection dropped| unless repeating could create a second copy (1) |
 * | any other 4xx, an abort by the caller's signal    | never                                           |
 *
 * (1) Repeated: reads, updates, idempotent actions, usage events (their idempotency key, fixed before the
 * first attempt, makes a repeat a no-op), end-user creation (the unique external id does). Not repeated:
 * `subscriptions.create`.
 *
 * Waits: the answer's `Retry-After` (or `retry-after-ms`) when present and at most 60 s (above that the
 * error is thrown at once); otherwise exponential backoff with full jitter: uniform(0, min(8, 0.5 * 2**n))
 * seconds before retry n+1. Every attempt sends its own `X-Request-Id`.
 */
import { randomUUID } from "node:crypto";

import { maskKey, type ResolvedConfig } from "./config.js";
import { BearLumenError, InvalidRequestError, NetworkError, errorFromResponse } from "./errors.js";
import { VERSION } from "./version.js";

const INITIAL_BACKOFF_S = 0.5;
const MAX_BACKOFF_S = 8;
const MAX_RETRY_AFTER_S = 60;

/** Per-call options, the last argument of every method. */
export interface RequestOptions {
  /** Aborts the call (the current attempt and any wait before a retry). */
  signal?: AbortSignal;
  /** Milliseconds per attempt, for this call only. */
  timeout?: number;
  /** Retries for this call only. */
  maxRetries?: number;
}

export type Query = Record<string, string | number | boolean | Date | null | undefined>;

export interface HttpRequest {
  method: "GET" | "POST" | "PATCH";
  path: string;
  body?: unknown;
  query?: Query;
  /** False when a repeat after an ambiguous failure could create a second copy. */
  retryAmbiguous?: boolean;
}

// Error codes (undici / Node) of failures where the request certainly never reached the service.
const NEVER_SENT = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CONNECT",
]);

export function encodeJson(body: unknown): string {
  try {
    return JSON.stringify(body, (_key, value: unknown) => {
      if (typeof value === "number" && !Number.isFinite(value)) {
        throw new TypeError(`non-finite number ${String(value)}`);
      }
      if (typeof value === "bigint") return value.toString();
      return value;
    });
  } catch (error) {
    throw new InvalidRequestError(`The request body cannot be sent as JSON: ${(error as Error).message}`, {
      code: "invalid_request",
    });
  }
}

export function formatDate(value: string | Date): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      throw new InvalidRequestError("Invalid Date", { code: "invalid_date" });
    }
    return value.toISOString();
  }
  return value;
}

/** Seconds to wait, from `retry-after-ms` or `Retry-After` (seconds or HTTP date); null if absent. */
export function parseRetryAfter(headers: Headers): number | null {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value / 1000;
  }
  const raw = headers.get("retry-after")?.trim();
  if (!raw) return null;
  const seconds = Number(raw);
  if (!Number.isNaN(seconds)) return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
  const when = Date.parse(raw);
  if (Number.isNaN(when)) return null;
  return Math.max(0, (when - Date.now()) / 1000);
}

/** Full jitter (AWS architecture blog): uniform(0, min(cap, base * 2**n)) seconds. */
export function backoffDelay(retryNumber: number): number {
  return Math.random() * Math.min(MAX_BACKOFF_S, INITIAL_BACKOFF_S * 2 ** retryNumber);
}

function newRequestId(): string {
  return `req_${randomUUID().replace(/-/g, "")}`;
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(error: unknown, timedOut: boolean): string {
  if (timedOut) return "timed out";
  const code = errorCode(error);
  const cause = (error as { cause?: { message?: string } }).cause?.message;
  const message = cause || (error as Error)?.message || String(error);
  return code ? `${code}: ${message}` : message;
}

/** Resolves after `seconds`, or rejects with the signal's reason when it aborts first. */
function sleep(seconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, seconds * 1000);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export class HttpClient {
  // private (#): a logged client or resource never shows the API key
  readonly #config: ResolvedConfig;
  private readonly userAgent: string;

  constructor(config: ResolvedConfig) {
    this.#config = config;
    const node = typeof process !== "undefined" ? process.version : "unknown";
    this.userAgent = `bearlumen-node/${VERSION} (Node.js ${node})`;
  }

  get config(): ResolvedConfig {
    return this.#config;
  }

  async request<T>(request: HttpRequest, options: RequestOptions = {}): Promise<T> {
    const { method, path } = request;
    const content = request.body === undefined ? undefined : encodeJson(request.body);
    const url = this.url(path, request.query);
    const maxRetries = options.maxRetries ?? this.config.maxRetries;
    const timeout = options.timeout ?? this.config.timeout;
    const signal = options.signal;
    for (let retriesDone = 0; ; retriesDone++) {
      signal?.throwIfAborted();
      const requestId = newRequestId();
      const attempt = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        attempt.abort(new Error("timed out"));
      }, timeout);
      const onAbort = () => attempt.abort(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      let response: Response;
      let text: string;
      try {
        response = await this.config.fetch(url, {
          method,
          headers: this.headers(requestId, content !== undefined),
          body: content,
          signal: attempt.signal,
          redirect: "manual",
        });
        text = await response.text();
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const neverSent = !timedOut && NEVER_SENT.has(errorCode(error) ?? "");
        const retry =
          retriesDone < maxRetries && (neverSent || request.retryAmbiguous !== false);
        if (!retry) {
          const attempts = retriesDone + 1;
          let message =
            `${method} ${path}: could not complete the request to the Bear Lumen service at ` +
            `${this.config.baseUrl}: ${describe(error, timedOut)} (after ${attempts} attempt${attempts === 1 ? "" : "s"})`;
          if (!neverSent) message += "; the service may have processed it";
          throw new NetworkError(this.redact(message), {
            code: timedOut ? "timeout" : "connection_error",
            requestId: neverSent ? null : requestId,
            cause: error,
          });
        }
        await sleep(backoffDelay(retriesDone), signal);
        continue;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
      if (response.ok) return this.decode<T>(response, text);
      const error = this.errorFor(response, text);
      const delay = this.statusRetryDelay(response, retriesDone, maxRetries);
      if (delay === null) throw error;
      await sleep(delay, signal);
    }
  }

  private url(path: string, query: Query | undefined): string {
    const url = new URL(this.config.baseUrl + path);
    if (query) {
      for (const [name, value] of Object.entries(query)) {
        if (value === undefined || value === null) continue;
        url.searchParams.set(name, value instanceof Date ? formatDate(value) : String(value));
      }
    }
    return url.toString();
  }

  private headers(requestId: string, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.config.apiKey}`,
      Accept: "application/json",
      "User-Agent": this.userAgent,
      "X-Request-Id": requestId,
    };
    if (hasBody) headers["Content-Type"] = "application/json";
    return headers;
  }

  private decode<T>(response: Response, text: string): T {
    if (!text) return {} as T;
    try {
      // JSON.parse keeps money as the decimal strings the service sends: never a float.
      return JSON.parse(text) as T;
    } catch {
      throw new BearLumenError("The service answered with a body that is not JSON", {
        status: response.status,
        requestId: response.headers.get("x-request-id"),
      });
    }
  }

  private errorFor(response: Response, text: string): BearLumenError {
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    const error = errorFromResponse(
      response.status,
      body,
      response.headers,
      body === null ? text : "",
      parseRetryAfter(response.headers),
    );
    const redacted = this.redact(error.message);
    if (redacted !== error.message) error.message = redacted;
    return error;
  }

  private statusRetryDelay(response: Response, retriesDone: number, maxRetries: number): number | null {
    if (retriesDone >= maxRetries || !isRetryableStatus(response.status)) return null;
    const retryAfter = parseRetryAfter(response.headers);
    if (retryAfter !== null) return retryAfter <= MAX_RETRY_AFTER_S ? retryAfter : null;
    return backoffDelay(retriesDone);
  }

  private redact(text: string): string {
    const key = this.config.apiKey;
    return key && text.includes(key) ? text.split(key).join(maskKey(key)) : text;
  }
}
