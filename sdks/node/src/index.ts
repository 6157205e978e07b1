/** `@bearlumen/node-sdk`: the Bear Lumen SDK for Node.js and TypeScript (the Python SDK's API surface). */
export { BearLumen, type BearLumenOptions, type PingResult } from "./client.js";
export { DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS, type ClientOptions } from "./config.js";
export type { RequestOptions } from "./http.js";
export {
  AuthenticationError,
  BearLumenError,
  DuplicateCustomerError,
  InvalidEmailError,
  InvalidRequestError,
  NetworkError,
  NotFoundError,
  RateLimitError,
  type BatchItemError,
  type BearLumenErrorOptions,
} from "./errors.js";
export { compareDecimalStrings, isDecimalString, sumDecimalStrings } from "./decimal.js";
export { EndUsers } from "./resources/endUsers.js";
export { Subscriptions } from "./resources/subscriptions.js";
export { Usage } from "./resources/usage.js";
export { CostAttribution } from "./resources/costAttribution.js";
export type { TrackOptions, UsageSource } from "./tracking/event.js";
export type { FlushResult, MeterOptions } from "./tracking/meter.js";
export type { TokenUsage } from "./tracking/usage.js";
export { VERSION } from "./version.js";
export type * from "./types.js";
