/**
 * A record source that plays back records it was given, for tests of a generator or a
 * producer without Kinesis.
 *
 * @module
 */
import type { KinesisClientLike } from "./aws_client.ts";
import type { ReadShardOptions } from "./kinesis/shard_reader.ts";
import type { ShardPage, ShardRecord } from "./records.ts";
import { compareSequenceNumbers } from "./snapshot_key.ts";
import type { RecordSource } from "./shard_snapshotter.ts";

/** Options for {@linkcode scriptedSource}. */
export interface ScriptedSourceOptions {
  /** Mark the page with the last record as the shard's last (`closed`): the snapshot
   * published after it is final. Defaults to false: the shard stays open. */
  closed?: boolean;
}

/**
 * A {@linkcode RecordSource} that plays back `records`: on each call, the records after the
 * `after` it is given, in pages of at most `limit` (10,000 if not given), then it ends as a
 * read that has caught up does. The Kinesis client it is handed is never used.
 *
 * @param records The shard's records, in sequence order (decimal sequence numbers).
 * @param options Whether the shard ends with them.
 * @returns The source, for `ShardSnapshotter`'s `source` option.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { scriptedSource } from "./scripted_source.ts";
 * import type { KinesisClientLike } from "./aws_client.ts";
 * const data = new TextEncoder().encode("{}");
 * const source = scriptedSource([
 *   { sequenceNumber: "1", partitionKey: "a", data },
 *   { sequenceNumber: "2", partitionKey: "b", data },
 * ]);
 * const pages = source({} as KinesisClientLike, { stream: "s", shardId: "x", after: "1" });
 * for await (const page of pages) assert.deepEqual(page.records.map((r) => r.partitionKey), ["b"]);
 * ```
 */
export function scriptedSource(
  records: readonly ShardRecord[],
  options: ScriptedSourceOptions = {},
): RecordSource {
  return async function* (
    _kinesis: KinesisClientLike,
    read: ReadShardOptions,
  ): AsyncGenerator<ShardPage> {
    const after = records.filter((r) => compareSequenceNumbers(r.sequenceNumber, read.after) > 0);
    const limit = read.limit ?? 10_000;
    for (let start = 0; start < after.length || start === 0; start += limit) {
      if (read.signal?.aborted) return;
      const last = start + limit >= after.length;
      yield {
        shardId: read.shardId,
        records: after.slice(start, start + limit),
        millisBehindLatest: 0,
        fullPage: !last,
        closed: last && (options.closed ?? false),
        childShards: [],
      };
    }
  };
}
