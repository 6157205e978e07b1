/**
 * `track(stream)`: the caller's stream, observed. The caller gets an object that behaves as the original
 * (same chunks, same methods and properties: a Proxy whose only change is `[Symbol.asyncIterator]`), and the
 * call is recorded once, when the iteration ends however it ends: the last chunk (complete usage), a `break`
 * or an error (the usage seen so far, marked `stream_partial`).
 */
import { StreamState } from "./detect.js";

export type StreamEnd = (state: StreamState, complete: boolean) => void;

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function"
  );
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // observing never breaks the caller's iteration
  }
}

export function observeStream<T extends AsyncIterable<unknown>>(stream: T, onEnd: StreamEnd): T {
  const state = new StreamState();
  let ended = false;
  const end = (complete: boolean) => {
    if (ended) return;
    ended = true;
    safely(() => onEnd(state, complete));
  };
  const iterate = (): AsyncIterator<unknown> => {
    const inner = stream[Symbol.asyncIterator]();
    const wrapped: AsyncIterator<unknown> = {
      async next(...args: [] | [unknown]) {
        let result: IteratorResult<unknown>;
        try {
          result = await inner.next(...args);
        } catch (error) {
          end(false);
          throw error;
        }
        if (result.done) end(true);
        else safely(() => state.add(result.value));
        return result;
      },
    };
    if (typeof inner.return === "function") {
      wrapped.return = async (value?: unknown) => {
        end(false);
        return inner.return!(value);
      };
    } else {
      wrapped.return = async (value?: unknown) => {
        end(false);
        return { done: true, value };
      };
    }
    if (typeof inner.throw === "function") {
      wrapped.throw = async (error?: unknown) => {
        end(false);
        return inner.throw!(error);
      };
    }
    return wrapped;
  };
  return new Proxy(stream, {
    get(target, property, receiver) {
      if (property === Symbol.asyncIterator) return iterate;
      const value = Reflect.get(target, property, receiver);
      // methods run on the original object (private fields and internal slots stay reachable)
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
