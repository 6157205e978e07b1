/**
 * `BearLumen`: the entry point of the SDK.
 *
 *     import { BearLumen } from "@bearlumen/node-sdk";
 *     const client = new BearLumen({ apiKey: "blm_..." });          // or BEARLUMEN_API_KEY
 *     await client.usage.record({ eventType: "token_usage", metricName: "llm_tokens", quantity: 150000 });
 *
 * One client per process: it holds the background queue of `track()`.
 */
import { resolveConfig, maskKey, type ClientOptions } from "./config.js";
import { HttpClient, type RequestOptions } from "./http.js";
import { CostAttribution } from "./resources/costAttribution.js";
import { EndUsers } from "./resources/endUsers.js";
import { Subscriptions } from "./resources/subscriptions.js";
import { Usage } from "./resources/usage.js";
import { isDecimalString } from "./decimal.js";
import { describe } from "./tracking/detect.js";
import { buildEvent, type TrackOptions } from "./tracking/event.js";
import { Meter, type FlushResult, type MeterOptions } from "./tracking/meter.js";
import { isAsyncIterable, observeStream } from "./tracking/stream.js";

export interface BearLumenOptions extends ClientOptions, MeterOptions {}

/** What `ping()` found: `ok` when the service answered an authenticated request. */
export interface PingResult {
  ok: boolean;
  /** Milliseconds the round trip took. */
  latencyMs: number;
  /** Why not, when not ok (an error of this SDK: AuthenticationError, NetworkError, ...). */
  error?: Error;
}

export class BearLumen {
  readonly endUsers: EndUsers;
  readonly subscriptions: Subscriptions;
  readonly usage: Usage;
  readonly costAttribution: CostAttribution;
  readonly #http: HttpClient;
  readonly #meter: Meter;

  /**
   * @throws AuthenticationError when no API key is given at all (option or `BEARLUMEN_API_KEY`).
   */
  constructor(options: BearLumenOptions = {}) {
    this.#http = new HttpClient(resolveConfig(options));
    this.endUsers = new EndUsers(this.#http);
    this.subscriptions = new Subscriptions(this.#http);
    this.usage = new Usage(this.#http);
    this.costAttribution = new CostAttribution(this.#http);
    this.#meter = new Meter(this.usage, options);
  }

  get baseUrl(): string {
    return this.#http.config.baseUrl;
  }

  get timeout(): number {
    return this.#http.config.timeout;
  }

  get maxRetries(): number {
    return this.#http.config.maxRetries;
  }

  /**
   * Record an openai / anthropic response (chat.completions, responses, messages) and return it unchanged;
   * given a stream (an async iterable), return it observed: the same chunks, recorded when it ends. Never
   * throws: a shape it does not know is not recorded (and reported to `onError`). The event goes out in the
   * background: `await client.flush()` to wait for it.
   */
  track<T>(response: T, trackOptions: TrackOptions = {}): T {
    try {
      // a copy: the event is built later, and the caller may reuse its options object meanwhile
      const options: TrackOptions = { ...trackOptions };
      if (options.metadata) options.metadata = { ...options.metadata };
      if (options.costUsd !== undefined && !isDecimalString(options.costUsd)) {
        throw new TypeError(`track(): costUsd must be a decimal string such as "0.0042", got ${String(options.costUsd)}`);
      }
      if (isThenable(response)) {
        // the un-awaited call (an openai / anthropic APIPromise): recorded when it resolves; the very promise
        // is returned, so `.withResponse()` and the like still work. A stream must be awaited first.
        response.then(
          (value) => {
            if (isAsyncIterable(value) && describe(value) === null) {
              this.#meter.report(new TypeError("track(promise of a stream): await the stream, then track() it"), "track");
            } else {
              this.track(value, options);
            }
          },
          () => undefined, // a failed call records nothing; the caller handles its own rejection
        );
        return response;
      }
      if (isAsyncIterable(response) && describe(response) === null) {
        return observeStream(response, (state, complete) => {
          // a stream none of whose items was a billable call records nothing
          if (state.facts === null) return;
          const facts = state.facts;
          const source = complete && state.complete ? "stream" : "stream_partial";
          const at = Date.now();
          this.#meter.enqueue(() => buildEvent(facts, options, source, true, new Date(at)));
        });
      }
      const facts = describe(response);
      if (facts === null) {
        throw new TypeError("track(): not an openai or anthropic response (no usage found); nothing recorded");
      }
      const at = Date.now();
      // built later, off the caller's turn (hashing the key, the buckets): only the facts are read now
      this.#meter.enqueue(() => buildEvent(facts, options, "response", false, new Date(at)));
    } catch (error) {
      this.#meter.report(error, "track");
    }
    return response;
  }

  /** Send what `track()` queued; resolves (never rejects) when it is stored or cannot be now. */
  flush(): Promise<FlushResult> {
    return this.#meter.flush();
  }

  /** Flush, then stop the background queue (call it before `process.exit()` or on SIGTERM). */
  shutdown(): Promise<FlushResult> {
    return this.#meter.shutdown();
  }

  /** Whether the service answers an authenticated request with this key. Never throws. */
  async ping(options: RequestOptions = {}): Promise<PingResult> {
    const start = performance.now();
    try {
      await this.#http.request({ method: "GET", path: "/v1/end_users", query: { limit: 1 } }, options);
      return { ok: true, latencyMs: performance.now() - start };
    } catch (error) {
      return { ok: false, latencyMs: performance.now() - start, error: error as Error };
    }
  }

  /** Tracked events waiting to be sent. */
  get pending(): number {
    return this.#meter.pending;
  }

  toString(): string {
    return `BearLumen { baseUrl: ${this.baseUrl}, apiKey: ${maskKey(this.#http.config.apiKey)} }`;
  }

}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}
