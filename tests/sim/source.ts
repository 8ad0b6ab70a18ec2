/**
 * The simulator's record seam: a {@linkcode RecordSource} that pages through the scripted
 * records as the shard reader would. One-shot runs read to the tip and end; a following run
 * reads `stopAfterPages` pages (or to the tip and one empty page), then the schedule stops it:
 * its stop signal aborts and the read in flight ends with the signal's reason, as `readShard`'s
 * does.
 *
 * @module
 */
import type { KinesisClientLike, ShardPage } from "../../mod.ts";
import type { RecordSource } from "../../testing.ts";
import type { SimRecord } from "./generator.ts";

const encoder = new TextEncoder();
const SEQ_BASE = 49_000_000_000_000_000_000n;

/** A Kinesis client for runs fed by the source: never called. */
export const NO_KINESIS: KinesisClientLike = {
  send: () => Promise.reject(new Error("no Kinesis in the simulation")),
  config: { region: "none" },
};

/** The shard's hash key range: all of it. */
const WHOLE_RANGE = { StartingHashKey: "0", EndingHashKey: (2n ** 128n - 1n).toString() };

/**
 * A Kinesis client for `streamStatus`: one open shard, 24 hours of retention. Anything else
 * (GetRecords is only asked for a stale shard, and the simulation's limit is never reached) is
 * refused.
 */
export function statusKinesis(shardId: string): KinesisClientLike {
  return {
    send: (command: unknown) => {
      switch ((command as object).constructor.name) {
        case "ListShardsCommand":
          return Promise.resolve({
            Shards: [{
              ShardId: shardId,
              HashKeyRange: WHOLE_RANGE,
              SequenceNumberRange: { StartingSequenceNumber: "0" },
            }],
          });
        case "DescribeStreamSummaryCommand":
          return Promise.resolve({ StreamDescriptionSummary: { RetentionPeriodHours: 24 } });
        default:
          return Promise.reject(new Error("no such call in the simulation"));
      }
    },
    config: { region: "none" },
  } as KinesisClientLike;
}

/** The sequence number of record `i` (gaps between them, as in Kinesis). */
export function sequenceNumber(i: number): string {
  return (SEQ_BASE + BigInt(i) * 10n).toString();
}

/** Options for {@linkcode scriptedSource}. */
export interface ScriptedSourceOptions {
  /** Records per page. */
  pageSize: number;
  /** Following: the stop to abort after this many pages. */
  stop?: { controller: AbortController; afterPages: number };
}

function page(shardId: string, records: SimRecord[], fullPage: boolean): ShardPage {
  return {
    shardId,
    records: records.map((r) => ({
      sequenceNumber: r.seq,
      partitionKey: r.key ?? "null-key",
      data: encoder.encode(JSON.stringify({ key: r.key, value: r.value })),
      approximateArrivalTimestamp: new Date(),
    })),
    millisBehindLatest: 0,
    fullPage,
    closed: false,
    childShards: [],
  };
}

/** A source over `records` (read as they stand when each page is cut). */
export function scriptedSource(records: SimRecord[], options: ScriptedSourceOptions): RecordSource {
  return async function* (_kinesis, read) {
    let after = BigInt(read.after);
    let pages = 0;
    const following = read.doneLagMs === undefined;
    for (;;) {
      if (options.stop && pages >= options.stop.afterPages) {
        options.stop.controller.abort();
        throw options.stop.controller.signal.reason;
      }
      read.signal?.throwIfAborted();
      const next = records.filter((r) => BigInt(r.seq) > after).slice(0, options.pageSize);
      const full = next.length === options.pageSize;
      yield page(read.shardId, next, full);
      pages++;
      if (next.length > 0) after = BigInt(next[next.length - 1].seq);
      if (!full && !following) return;
      if (!full && following && options.stop) options.stop.afterPages = pages;
      if (!full && following && !options.stop) return;
    }
  };
}
