/**
 * The stream's retention period: records older than it are trimmed from the shard, so a
 * snapshot whose last record is older may have missed records after it.
 *
 * @module
 */
import type { KinesisClientLike } from "../aws_client.ts";
import { kinesisSdk } from "./_sdk.ts";
import { DEFAULT_RETRY, withRetries } from "./retry.ts";

/** The shortest retention Kinesis allows, in hours: a snapshot younger than this has no gap. */
export const MIN_RETENTION_HOURS = 24;

/**
 * Reads a stream's retention period (DescribeStreamSummary).
 *
 * @param client The Kinesis client.
 * @param stream The stream name.
 * @param signal Aborts the call.
 * @returns The retention period in hours.
 */
export async function streamRetentionHours(
  client: KinesisClientLike,
  stream: string,
  signal?: AbortSignal,
): Promise<number> {
  const { DescribeStreamSummaryCommand } = await kinesisSdk();
  const out = await withRetries(
    () =>
      client.send(new DescribeStreamSummaryCommand({ StreamName: stream }), {
        abortSignal: signal,
      }),
    { ...DEFAULT_RETRY, signal },
  );
  return out.StreamDescriptionSummary?.RetentionPeriodHours ?? MIN_RETENTION_HOURS;
}
