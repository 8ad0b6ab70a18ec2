/**
 * The retention flags `snapshot` and `gc` share: `--retain DURATION` and `--keep N`.
 *
 * @module
 */
import type { RetentionPolicy } from "../retention.ts";
import { parseDuration, UsageError, wholeNumber } from "./_common.ts";

/** The flags' parse options. */
export const RETENTION_OPTIONS = {
  retain: { type: "string" },
  keep: { type: "string" },
} as const;

/** Help text for the flags. */
export const RETENTION_HELP =
  `  --retain DURATION           keep every point younger than this (e.g. 15m, 24h, 7d), with
                              the objects it needs; 0 keeps none for its age; forever keeps
                              everything (deletes nothing)
  --keep N                    keep the newest N points of each shard, whatever their age
                              (at least 1; the newest point always stays restorable)
                              Without either: --retain 24h --keep 1. With one, the other
                              keeps nothing more (--keep 1, --retain 0).`;

/**
 * The policy the flags give, or `undefined` (the default policy) when neither is given.
 *
 * @param values Parsed flags; `alias` names a deprecated flag read as `--retain`.
 */
export function parseRetention(
  values: Record<string, unknown>,
  alias?: string,
): RetentionPolicy | undefined {
  const retain = (values.retain ?? (alias ? values[alias] : undefined)) as string | undefined;
  const keep = values.keep as string | undefined;
  if (retain === undefined && keep === undefined) return undefined;
  return {
    retainMs: retain === undefined ? undefined : retainMs(retain),
    keepPoints: wholeNumber("keep", keep, 1),
  };
}

function retainMs(value: string): number {
  if (value === "forever") return Infinity;
  if (value === "0") return 0;
  try {
    return parseDuration("retain", value);
  } catch {
    throw new UsageError(
      `Cannot use --retain as it is not a duration like 15m, 24h or 7d (or 0, or forever): current value is ${
        JSON.stringify(value)
      }`,
    );
  }
}
