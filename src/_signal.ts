/**
 * Combining abort signals: an object's own signal and a per-call one.
 *
 * @module
 */

/** A signal that aborts when any of the given ones does; `undefined` when none is given. */
export function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const given = signals.filter((s): s is AbortSignal => s !== undefined);
  if (given.length <= 1) return given[0];
  return AbortSignal.any(given);
}
