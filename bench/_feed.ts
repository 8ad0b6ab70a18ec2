/**
 * A synthetic shard for the incremental figures (7-10): the first `keys` records load keys
 * `user-0` .. `user-<keys-1>` once each; every record after them changes one existing key.
 * Any run of up to `keys` consecutive changes touches distinct keys, spread over the whole key
 * space, so appending 1% of `keys` changes exactly 1% of the rows. Values are ~100-byte JSON.
 * Records are made on the fly from their index: the feed holds no records, only its tip.
 *
 * It stands in for Kinesis through the snapshotter's `source` option (the emulator loads a
 * million records far too slowly). One-shot runs stop at the tip; following runs (no
 * `doneLagMs`) wait for more records, yielding empty pages, until their signal aborts.
 *
 * @module
 */
import {
  type KinesisClientLike,
  kvGenerator,
  type ReadShardOptions,
  type S3SnapshotStore,
  type ShardPage,
  type ShardRecord,
  ShardSnapshotter,
  type ShardSnapshotterOptions,
} from "../mod.ts";
import type { RecordSource } from "../testing.ts";

const encoder = new TextEncoder();
const SEQ_BASE = 49_700_000_000_000_000_000_000_000_000_000_000_000_000n;
const SEQ_STEP = 1_000n;
/** A prime: coprime with any key count below it, so changes walk every key before repeating. */
const STRIDE = 2_654_435_761;
/** The synthetic shard's id. */
export const SHARD_ID = "shardId-000000000000";

/** A Kinesis client for runs whose records come from a `source`: never called. */
export const NO_KINESIS: KinesisClientLike = {
  send: () => Promise.reject(new Error("no Kinesis in this run")),
  config: { region: "none" },
};

/** The stream the synthetic shard belongs to. */
export const STREAM = "users";

/** A `kv` snapshotter of the synthetic shard, publishing to `store` from `localPath`. */
export function feedProducer(
  store: S3SnapshotStore,
  localPath: string,
  feed: SyntheticShard,
  extra: Partial<ShardSnapshotterOptions> = {},
): ShardSnapshotter {
  return new ShardSnapshotter({
    kinesis: NO_KINESIS,
    store,
    stream: STREAM,
    shardId: SHARD_ID,
    localPath,
    generator: kvGenerator(),
    source: feed.source(),
    ...extra,
  });
}

/** Options for {@linkcode SyntheticShard.source}. */
export interface FeedSourceOptions {
  /** Stop at this record index (exclusive) instead of at the tip. */
  until?: number;
  /** Records per page. Defaults to 10,000 (GetRecords' maximum). */
  pageSize?: number;
}

/** The shard: its records are a pure function of their index (and the shard's epoch). */
export class SyntheticShard {
  /** Distinct keys. */
  readonly keys: number;
  /** When record 0 arrived (ms since 1970); record `i` arrived `i` ms later. */
  readonly epoch: number;
  /** Records that exist (the shard's tip, exclusive). */
  tip: number;
  #stride: number;
  #waiters = new Set<() => void>();

  /**
   * A shard whose first `keys` records (the load) already exist. Records arrive as of now (the
   * load over the last `keys` ms): a snapshot whose last record arrived more than a day ago makes
   * the producer check the stream's retention with Kinesis, which a source-fed run does not have.
   *
   * @param keys Distinct keys.
   * @param epoch When record 0 arrived; pass the same one to rebuild the same records elsewhere.
   */
  constructor(keys: number, epoch: number = Date.now() - keys) {
    this.keys = keys;
    this.epoch = epoch;
    this.tip = keys;
    this.#stride = STRIDE % keys;
  }

  /** The sequence number of record `i`. */
  sequenceNumber(i: number): string {
    return (SEQ_BASE + BigInt(i) * SEQ_STEP).toString();
  }

  /** The index of the record after sequence number `after` (0 for the bootstrap point). */
  indexAfter(after: string): number {
    const seq = BigInt(after);
    return seq < SEQ_BASE ? 0 : Number((seq - SEQ_BASE) / SEQ_STEP) + 1;
  }

  /** Record `i`. */
  record(i: number): ShardRecord {
    const k = i < this.keys ? i : ((i - this.keys) * this.#stride) % this.keys;
    const key = `user-${k}`;
    const h = Math.imul(i + 1, 0x9e3779b1) >>> 0;
    const data = encoder.encode(JSON.stringify({
      user: key,
      version: i,
      balance: h % 1_000_000,
      plan: ["free", "pro", "team"][h % 3],
      region: ["eu-west-1", "us-east-1", "ap-south-1"][(h >>> 8) % 3],
      updated: this.epoch + i,
    }));
    return {
      sequenceNumber: this.sequenceNumber(i),
      partitionKey: key,
      data,
      approximateArrivalTimestamp: new Date(this.epoch + i),
    };
  }

  /** Makes `n` more records (changes to `n` keys) available. */
  append(n: number): void {
    this.tip += n;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  /**
   * The shard as a {@linkcode RecordSource}: pages of the records after `options.after`.
   *
   * @param feed Where to stop, page size.
   * @returns The source.
   */
  source(feed: FeedSourceOptions = {}): RecordSource {
    return (_kinesis, options) => this.#pages(options, feed);
  }

  async *#pages(options: ReadShardOptions, feed: FeedSourceOptions): AsyncGenerator<ShardPage> {
    const pageSize = feed.pageSize ?? 10_000;
    const following = options.doneLagMs === undefined;
    let next = this.indexAfter(options.after);
    for (;;) {
      const end = Math.min(feed.until ?? Infinity, this.tip);
      if (next < end) {
        const n = Math.min(pageSize, end - next);
        const records = Array.from({ length: n }, (_, j) => this.record(next + j));
        next += n;
        yield page(records, next < end);
        continue;
      }
      if (!following || options.signal?.aborted) return;
      await this.#wait(options.pollIntervalMs ?? 1_000, options.signal);
      if (options.signal?.aborted) return;
      if (next >= Math.min(feed.until ?? Infinity, this.tip)) yield page([], false);
    }
  }

  /** Waits for an append, the poll interval, or the signal, whichever comes first. */
  #wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

function page(records: ShardRecord[], more: boolean): ShardPage {
  return {
    shardId: SHARD_ID,
    records,
    millisBehindLatest: more ? 1_000 : 0,
    fullPage: more,
    closed: false,
    childShards: [],
  };
}
