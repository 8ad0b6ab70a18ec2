/**
 * Whether records wait in a shard after a point, and since when: what tells an idle shard
 * (whose snapshot is complete however old) from one whose snapshot falls behind.
 *
 * @module
 */
import type { KinesisClientLike } from "../aws_client.ts";
import { kinesisSdk } from "./_sdk.ts";

/** What waits in a shard after a point. */
export interface WaitingRecords {
  /** Whether a record waits after the point. */
  recordsWaiting: boolean;
  /** When the first record after the point arrived, when one waits and it was read. */
  waitingSince?: Date;
}

/** Empty pages (a sparse stretch of the shard) read before saying "something waits". */
const MAX_EMPTY_PAGES = 3;

/**
 * Reads whether a record waits in a shard after a point, and when the first one arrived: one
 * GetShardIterator and one GetRecords of one record (a few more only across empty pages). The
 * client's own retries are the retry budget of each call.
 *
 * @param kinesis The Kinesis client.
 * @param stream The stream name.
 * @param shardId The shard.
 * @param after The point's sequence number; `undefined` for the shard's start.
 * @param signal Aborts the calls.
 * @returns What waits.
 */
export async function waitingRecords(
  kinesis: KinesisClientLike,
  stream: string,
  shardId: string,
  after: string | undefined,
  signal?: AbortSignal,
): Promise<WaitingRecords> {
  const { GetRecordsCommand, GetShardIteratorCommand } = await kinesisSdk();
  const start = after === undefined
    ? { ShardIteratorType: "TRIM_HORIZON" as const }
    : { ShardIteratorType: "AFTER_SEQUENCE_NUMBER" as const, StartingSequenceNumber: after };
  let iterator = (await kinesis.send(
    new GetShardIteratorCommand({ StreamName: stream, ShardId: shardId, ...start }),
    { abortSignal: signal },
  )).ShardIterator;
  for (let page = 0; iterator && page < MAX_EMPTY_PAGES; page++) {
    const out = await kinesis.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: 1 }),
      { abortSignal: signal },
    );
    const first = out.Records?.[0];
    if (first) return { recordsWaiting: true, waitingSince: first.ApproximateArrivalTimestamp };
    if (!out.MillisBehindLatest) return { recordsWaiting: false };
    iterator = out.NextShardIterator;
  }
  // Still behind the tip after empty pages: records wait further on.
  return { recordsWaiting: Boolean(iterator) };
}
