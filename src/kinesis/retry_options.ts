/**
 * The retry budget of an AWS call, as the `retry` options of `readShard`,
 * `listStreamShards`, `ShardSnapshotter` and `LiveReplica` take it (each field optional there).
 *
 * @module
 */

/**
 * How a call that fails transiently (throttling, a 5xx, a dropped connection) is retried:
 * capped exponential backoff with full jitter.
 */
export interface RetryOptions {
  /** Attempts in all, including the first. */
  maxAttempts: number;
  /** First delay in ms. */
  baseDelayMs: number;
  /** Largest delay in ms. */
  maxDelayMs: number;
  /** Aborts the waiting. */
  signal?: AbortSignal;
  /** Told about each retry. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}
