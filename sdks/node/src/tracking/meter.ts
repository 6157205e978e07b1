/**
 * The background queue behind `track()`: calls are queued on the caller's turn (no I/O there; the event is
 * built, its idempotency key hashed, only when its batch is first taken off the queue) and sent
 * in batches (`usage.recordBatch`, up to 100 events) on a timer, with the idempotency key each event got
 * when it was tracked, so a retry or a resend never counts one twice.
 *
 * Never throws into the caller: `track()` returns its argument whatever happens; `flush()` resolves with a
 * result, never rejects. Nothing lost on a normal exit: a `beforeExit` hook sends what is queued (it does
 * not run on `process.exit()` or a signal: call `await client.shutdown()` there). The timers are unref'd,
 * so the queue never keeps a process alive by itself.
 */
import { BearLumenError, InvalidRequestError } from "../errors.js";
import type { Usage } from "../resources/usage.js";
import type { UsageRecordInput } from "../types.js";

export interface MeterOptions {
  /** Events per request (1..1000, default 100). */
  batchSize?: number;
  /** Milliseconds between sends while events are queued (default 1000). */
  flushInterval?: number;
  /** Queued events kept at most while the service cannot be reached (default 10000; older are dropped). */
  maxQueueSize?: number;
  /** Called with each delivery problem (default: a `console.warn`, at most once per kind). */
  onError?: (error: unknown, context: string) => void;
}

/** What a `flush()` achieved. `complete`: everything tracked before it is stored. */
export interface FlushResult {
  complete: boolean;
  /** Events still queued (the service could not be reached). */
  pending: number;
  /** Events the service stored (or already had) since the previous flush. */
  sent: number;
  /** Events the service rejected as invalid (set aside, never resent) since the previous flush. */
  quarantined: number;
  /** Events dropped because the queue was full since the previous flush. */
  dropped: number;
}

const MAX_BACKOFF_MS = 30_000;

export class Meter {
  private readonly usage: Usage;
  private readonly batchSize: number;
  private readonly flushInterval: number;
  private readonly maxQueueSize: number;
  private readonly onError: (error: unknown, context: string) => void;
  // built events, or calls still to build (a function, run once when its batch is first taken)
  private queue: Array<UsageRecordInput | (() => UsageRecordInput)> = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private sending: Promise<void> | null = null;
  private failures = 0;
  private counts = { sent: 0, quarantined: 0, dropped: 0 };
  private closed = false;
  private exitHook: (() => void) | null = null;
  private exitFlushFailed = false;
  private readonly warned = new Set<string>();

  constructor(usage: Usage, options: MeterOptions = {}) {
    this.usage = usage;
    this.batchSize = Math.max(1, Math.min(1000, Math.floor(options.batchSize ?? 100)));
    this.flushInterval = Math.max(0, options.flushInterval ?? 1000);
    this.maxQueueSize = Math.max(1, options.maxQueueSize ?? 10_000);
    this.onError = options.onError ?? ((error, context) => this.warnOnce(error, context));
  }

  get pending(): number {
    return this.queue.length;
  }

  enqueue(event: UsageRecordInput | (() => UsageRecordInput)): void {
    if (this.closed) {
      this.report(new BearLumenError("track() after shutdown(): the event was not recorded"), "closed");
      this.counts.dropped += 1;
      return;
    }
    this.queue.push(event);
    if (this.queue.length > this.maxQueueSize) {
      this.queue.splice(0, this.queue.length - this.maxQueueSize);
      this.counts.dropped += 1;
      this.report(new BearLumenError(`the queue is full (${this.maxQueueSize} events): the oldest was dropped`), "queue_full");
    }
    this.installExitHook();
    this.schedule(this.queue.length >= this.batchSize ? 0 : this.flushInterval);
  }

  /** Send everything queued now; resolves when it is stored, or when the service could not take it. */
  async flush(): Promise<FlushResult> {
    try {
      this.cancelTimer();
      for (;;) {
        if (this.sending) {
          await this.sending;
          continue;
        }
        if (this.queue.length === 0) break;
        const failures = this.failures;
        await this.sendOnce();
        if (this.failures > failures) break; // the service cannot take it now: the timer retries later
      }
    } catch (error) {
      this.report(error, "flush");
    }
    if (this.queue.length > 0 && !this.closed) this.schedule(this.backoff());
    const result: FlushResult = { complete: this.queue.length === 0, pending: this.queue.length, ...this.counts };
    this.counts = { sent: 0, quarantined: 0, dropped: 0 };
    return result;
  }

  /** Flush, then stop: later `track()` calls are not recorded. Idempotent. */
  async shutdown(): Promise<FlushResult> {
    const result = await this.flush();
    this.closed = true;
    this.cancelTimer();
    this.removeExitHook();
    return result;
  }

  // ----------------------------------------------------------------------------------------- sending

  private schedule(delay: number): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.sendOnce().then(() => {
        if (this.queue.length > 0) this.schedule(this.failures > 0 ? this.backoff() : 0);
      });
    }, delay);
    this.timer.unref?.();
  }

  private cancelTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private backoff(): number {
    return Math.min(MAX_BACKOFF_MS, this.flushInterval * 2 ** Math.min(this.failures, 10)) || 100;
  }

  /** One batch, one request (or wait for the one in flight). Never rejects. */
  private sendOnce(): Promise<void> {
    if (this.sending) return this.sending;
    if (this.queue.length === 0) return Promise.resolve();
    const batch: UsageRecordInput[] = [];
    for (const entry of this.queue.splice(0, this.batchSize)) {
      if (typeof entry !== "function") {
        batch.push(entry);
        continue;
      }
      try {
        batch.push(entry()); // built once: a resend keeps the event, and so its idempotency key
      } catch (error) {
        this.counts.dropped += 1;
        this.report(error, "build");
      }
    }
    if (batch.length === 0) return Promise.resolve();
    this.sending = this.deliver(batch).finally(() => {
      this.sending = null;
    });
    return this.sending;
  }

  private async deliver(batch: UsageRecordInput[]): Promise<void> {
    try {
      await this.usage.recordBatch(batch);
      this.counts.sent += batch.length;
      this.failures = 0;
    } catch (error) {
      if (error instanceof InvalidRequestError && error.code === "invalid_batch" && error.errors?.length) {
        // the whole batch was refused for some events: set those aside and resend the others (same keys)
        const bad = new Set(error.errors.map((item) => item.index));
        this.counts.quarantined += bad.size;
        this.report(error, "quarantined");
        const good = batch.filter((_event, index) => !bad.has(index));
        this.queue.unshift(...good);
        return;
      }
      if (error instanceof InvalidRequestError) {
        // resending cannot help (a malformed request): set the batch aside
        this.counts.quarantined += batch.length;
        this.report(error, "rejected");
        return;
      }
      // the service is unreachable or failing: keep the events (at the front) and try later
      this.failures += 1;
      this.queue.unshift(...batch);
      this.report(error, "unreachable");
    }
  }

  // --------------------------------------------------------------------------------------- the exit

  private installExitHook(): void {
    if (this.exitHook !== null || typeof process === "undefined" || typeof process.on !== "function") return;
    this.exitHook = () => {
      // `beforeExit` fires each time the loop empties: send what is left, once more per failure at most
      if (this.queue.length === 0 || this.exitFlushFailed) return;
      void this.flush().then((result) => {
        if (!result.complete) {
          this.exitFlushFailed = true;
          this.report(new BearLumenError(`${result.pending} tracked events could not be delivered before exit`), "exit");
        }
      });
    };
    process.on("beforeExit", this.exitHook);
  }

  private removeExitHook(): void {
    if (this.exitHook !== null) process.off("beforeExit", this.exitHook);
    this.exitHook = null;
  }

  /** Hand a problem to `onError` (which may not throw into anything either). */
  report(error: unknown, context: string): void {
    try {
      this.onError(error, context);
    } catch {
      // a failing error callback must not break delivery
    }
  }

  private warnOnce(error: unknown, context: string): void {
    if (this.warned.has(context)) return;
    this.warned.add(context);
    const message = error instanceof Error ? error.message : String(error);
    console.warn(`bearlumen: ${context}: ${message}`);
  }
}
