/**
 * Retry with capped exponential backoff and full jitter, for Kinesis and S3 calls that fail
 * transiently. The SDK retries first (its standard mode); this is the outer, more patient loop.
 *
 * @module
 */
import type { RetryOptions } from "./retry_options.ts";

const THROTTLING = new Set([
  "ProvisionedThroughputExceededException",
  "LimitExceededException",
  "KMSThrottlingException",
  "ThrottlingException",
  "Throttling",
  "RequestLimitExceeded",
  "SlowDown",
]);

const TRANSIENT = new Set([
  "InternalFailure",
  "InternalError",
  "InternalServerError",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
]);

/** Whether an error from an AWS call is worth retrying. */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "AbortError") return false;
  // The environment is not set up (no region, no credentials): no retry changes that.
  if (error.name === "CredentialsProviderError" || /^Region is missing/.test(error.message)) {
    return false;
  }
  const e = error as Error & {
    code?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  if (THROTTLING.has(e.name) || TRANSIENT.has(e.name)) return true;
  if (e.code && TRANSIENT.has(e.code)) return true;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429;
  // No HTTP status at all: the connection failed before a response arrived.
  return e.name !== "TypeError" && e.name !== "RangeError";
}

export type { RetryOptions };

/** streambolt's retry budget for a Kinesis call: 10 attempts, backoff from 100 ms up to 5 s. */
export const DEFAULT_RETRY: RetryOptions = {
  maxAttempts: 10,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
};

/** The delay before retry number `attempt` (1-based): full jitter under a capped exponential. */
export function backoffDelay(attempt: number, options: RetryOptions): number {
  const cap = Math.min(
    options.maxDelayMs,
    options.baseDelayMs * 2 ** (attempt - 1),
  );
  return Math.round(Math.random() * cap);
}

/** Waits `ms`, or rejects early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Runs `task`, retrying retryable errors with backoff; rethrows the last error. */
export async function withRetries<T>(
  task: () => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await task();
    } catch (error) {
      if (attempt >= options.maxAttempts || !isRetryable(error)) throw error;
      const delay = backoffDelay(attempt, options);
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}
