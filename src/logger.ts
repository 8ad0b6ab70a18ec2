/**
 * The logger interface the library reports through. The library never prints by itself: give
 * it a logger (the CLI does) to see what it does.
 *
 * @module
 */

/** Structured fields attached to a log line. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Receives the library's log lines. */
export interface Logger {
  /**
   * Detailed progress.
   *
   * @param message What happened.
   * @param fields Structured details.
   */
  debug(message: string, fields?: LogFields): void;
  /**
   * Normal progress.
   *
   * @param message What happened.
   * @param fields Structured details.
   */
  info(message: string, fields?: LogFields): void;
  /**
   * Something went wrong but the work goes on (a retry, a skipped key).
   *
   * @param message What happened.
   * @param fields Structured details.
   */
  warn(message: string, fields?: LogFields): void;
}

/** A logger that drops everything; the default. */
export const silentLogger: Logger = {
  debug(): void {},
  info(): void {},
  warn(): void {},
};
