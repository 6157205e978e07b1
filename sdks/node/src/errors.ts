/**
 * The SDK's error classes: the same names and tree as the Python SDK (every class extends BearLumenError).
 *
 *     BearLumenError
 *     ├── InvalidEmailError       400 invalid_email
 *     ├── DuplicateCustomerError  409 duplicate_external_id
 *     ├── InvalidRequestError     400 invalid_request, invalid_quantity, invalid_batch, batch_too_large, ...
 *     ├── AuthenticationError     401 authentication_failed (also: no API key configured at all)
 *     ├── NotFoundError           404 not_found
 *     ├── RateLimitError          429 rate_limited (`retryAfter` seconds from the Retry-After header)
 *     └── NetworkError            connection refused, DNS, timeouts, dropped connections (after retries)
 *
 * A 5xx answer that survives the retries throws BearLumenError itself.
 */

/** One invalid event of a rejected batch (`invalid_batch`). */
export interface BatchItemError {
  index: number;
  code: string;
  message: string;
  param: string | null;
}

export interface BearLumenErrorOptions {
  status?: number | null;
  code?: string | null;
  requestId?: string | null;
  param?: string | null;
  errors?: BatchItemError[] | null;
  body?: unknown;
  cause?: unknown;
}

export class BearLumenError extends Error {
  /** HTTP status of the service's answer; null for a client-side check or a network failure. */
  readonly status: number | null;
  /** The machine readable code of the error envelope (`invalid_email`, `not_found`, ...). */
  readonly code: string | null;
  /** The `X-Request-Id` of the failed request, to quote when asking for help. */
  readonly requestId: string | null;
  /** The request parameter the error is about, when the service says so. */
  readonly param: string | null;
  /** Per-item details (`invalid_batch`: one `{ index, code, message, param }` per bad event). */
  readonly errors: BatchItemError[] | null;
  /** The decoded error body, as received. */
  readonly body: unknown;

  constructor(message: string, options: BearLumenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status ?? null;
    this.code = options.code ?? null;
    this.requestId = options.requestId ?? null;
    this.param = options.param ?? null;
    this.errors = options.errors ?? null;
    this.body = options.body;
  }
}

/** The email address is malformed (400 `invalid_email`). */
export class InvalidEmailError extends BearLumenError {}
/** An end user with this external id already exists in the tenant (409 `duplicate_external_id`). */
export class DuplicateCustomerError extends BearLumenError {}
/** The request's parameters are invalid (400: `invalid_request`, `invalid_quantity`, ...). */
export class InvalidRequestError extends BearLumenError {}
/** The API key is missing, malformed, unknown or revoked (401 `authentication_failed`). */
export class AuthenticationError extends BearLumenError {}
/** The resource does not exist, or belongs to another tenant (404 `not_found`). */
export class NotFoundError extends BearLumenError {}
/** The service could not be reached or did not answer (refused, DNS, timeout, dropped), after retries. */
export class NetworkError extends BearLumenError {}

/** Too many requests (429 `rate_limited`); `retryAfter`: the wait the service asks for, in seconds. */
export class RateLimitError extends BearLumenError {
  readonly retryAfter: number | null;

  constructor(message: string, options: BearLumenErrorOptions & { retryAfter?: number | null } = {}) {
    super(message, options);
    this.retryAfter = options.retryAfter ?? null;
  }
}

type ErrorClass = new (message: string, options?: BearLumenErrorOptions) => BearLumenError;

// error code of the envelope -> class (docs/api.md, "Errors"); the status decides for unknown codes.
const BY_CODE: Record<string, ErrorClass> = {
  invalid_email: InvalidEmailError,
  duplicate_external_id: DuplicateCustomerError,
  authentication_failed: AuthenticationError,
  not_found: NotFoundError,
  rate_limited: RateLimitError,
  invalid_request: InvalidRequestError,
  invalid_quantity: InvalidRequestError,
  invalid_timestamp: InvalidRequestError,
  invalid_date: InvalidRequestError,
  invalid_limit: InvalidRequestError,
  batch_too_large: InvalidRequestError,
  invalid_batch: InvalidRequestError,
};

const BY_STATUS: Record<number, ErrorClass> = {
  401: AuthenticationError,
  403: AuthenticationError,
  404: NotFoundError,
  409: DuplicateCustomerError,
  429: RateLimitError,
};

function errorClassFor(status: number, code: string | null): ErrorClass {
  if (code !== null && Object.prototype.hasOwnProperty.call(BY_CODE, code)) return BY_CODE[code]!;
  if (BY_STATUS[status] !== undefined) return BY_STATUS[status]!;
  if (status >= 400 && status < 500 && status !== 408) return InvalidRequestError;
  return BearLumenError;
}

function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/** The error for one error answer of the service (`{"error": {code, message, param, requestId, errors}}`). */
export function errorFromResponse(
  status: number,
  body: unknown,
  headers: Headers,
  text: string,
  retryAfter: number | null,
): BearLumenError {
  let code: string | null = null;
  let message: string | null = null;
  let param: string | null = null;
  let requestId: string | null = null;
  let errors: BatchItemError[] | null = null;
  const envelope = isObject(body) ? body["error"] : undefined;
  if (isObject(envelope)) {
    code = str(envelope["code"]);
    message = str(envelope["message"]);
    param = str(envelope["param"]);
    requestId = str(envelope["requestId"]);
    if (Array.isArray(envelope["errors"])) errors = envelope["errors"].filter(isObject) as unknown as BatchItemError[];
  } else if (isObject(body) && "detail" in body) {
    message = String(body["detail"]);
  }
  requestId ??= headers.get("x-request-id");
  if (!message) {
    const snippet = text.split(/\s+/).join(" ").trim().slice(0, 200);
    message = `HTTP ${status}` + (snippet ? `: ${snippet}` : "");
  }
  const cls = errorClassFor(status, code);
  const options = { status, code, requestId, param, errors, body };
  if (cls === RateLimitError) return new RateLimitError(message, { ...options, retryAfter });
  return new cls(message, options);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
