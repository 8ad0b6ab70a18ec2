/**
 * Reads one Kinesis shard from a position, one GetRecords page at a time, with the next page
 * fetched while the caller works on the current one. Handles throttling and transient errors
 * (backoff), expired iterators (re-acquired after the last record received) and closed shards
 * (the final page is delivered with the child shards).
 *
 * @module
 */
import type {
  _Record,
  ChildShard as SdkChildShard,
  GetRecordsOutput,
} from "@aws-sdk/client-kinesis";
import type { KinesisClientLike } from "../aws_client.ts";
import { ShardReadError } from "../errors.ts";
import { type Logger, silentLogger } from "../logger.ts";
import { recordRetry } from "../_telemetry.ts";
import type { ChildShard, ShardPage, ShardRecord } from "../records.ts";
import { BOOTSTRAP_SEQUENCE } from "../snapshot_key.ts";
import { hashKeyOf, type HashKeyRange, inHashKeyRange } from "./hash_key.ts";
import { deaggregate, isAggregated } from "./kpl.ts";
import { findShard } from "./list_shards.ts";
import { kinesisSdk } from "./_sdk.ts";
import { DEFAULT_RETRY, type RetryOptions, sleep, withRetries } from "./retry.ts";

/** Options for {@linkcode readShard}. */
export interface ReadShardOptions {
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** Read the records after this sequence number; `BOOTSTRAP_SEQUENCE` reads from the start. */
  after: string;
  /** Stop once a page ends at most this many ms behind the newest record and is not full.
   * Leave it out to follow the shard until it closes or `signal` aborts. */
  doneLagMs?: number;
  /** Records per GetRecords call, 1 to 10,000. Defaults to 10,000. */
  limit?: number;
  /** How long to wait after an empty page before asking again, in ms. Defaults to 1,000 (Kinesis
   * allows 5 reads per second per shard, shared by every consumer). */
  pollIntervalMs?: number;
  /** Fetch the next page while the caller handles the current one. Defaults to true. */
  prefetch?: boolean;
  /** The retry budget of each Kinesis call: throttling and transient errors are retried with
   * capped, jittered backoff up to `maxAttempts` attempts in all (default 10). This is the one
   * retry loop streambolt runs; a `KinesisClient`'s own retries (its `maxAttempts`, 3 by default)
   * run inside each attempt, so create the client with `maxAttempts: 1` (the CLI does) for this
   * budget to be the only one. */
  retry?: Partial<RetryOptions>;
  /** Split KPL aggregated records into their user records. Defaults to true. */
  deaggregate?: boolean;
  /** The shard's hash key range: user records of an aggregate outside it are dropped, as the
   * KCL does after a reshard. Looked up with ListShards when needed and not given. */
  hashKeyRange?: HashKeyRange;
  /** Stops reading. */
  signal?: AbortSignal;
  /** Where retries and iterator renewals are reported. */
  logger?: Logger;
}

const MAX_ITERATOR_RENEWALS = 10;
/** After an empty page while behind the tip (a gap in the shard), ask again this soon. */
const GAP_POLL_MS = 200;

/**
 * Reads a shard page by page.
 *
 * @param client The Kinesis client (a `KinesisClient`).
 * @param options Where to start and when to stop.
 * @returns The pages, in order; the last one has `closed` set when the shard ended.
 *
 * @example Usage
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { BOOTSTRAP_SEQUENCE } from "../snapshot_key.ts";
 * import { readShard } from "./shard_reader.ts";
 * const pages = readShard(new KinesisClient({ maxAttempts: 1 }), {
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   after: BOOTSTRAP_SEQUENCE,
 *   doneLagMs: 0,
 * });
 * for await (const page of pages) console.log(page.records.length);
 * ```
 */
export async function* readShard(
  client: KinesisClientLike,
  options: ReadShardOptions,
): AsyncGenerator<ShardPage> {
  const reader = new ShardReader(client, options);
  try {
    yield* reader.pages();
  } finally {
    await reader.close();
  }
}

/** One read of a shard: its iterator, its position, its pending prefetch. */
class ShardReader {
  #client: KinesisClientLike;
  #options: ReadShardOptions;
  #limit: number;
  #logger: Logger;
  #abort = new AbortController();
  #onOuterAbort = () => this.#abort.abort(this.#options.signal?.reason);
  #retry: RetryOptions;
  /** The position to resume from if an iterator expires: after the last record received. */
  #resumeAfter: string;
  #renewals = 0;
  #hashKeyRange?: HashKeyRange;
  #pending?: Promise<GetRecordsOutput>;

  constructor(client: KinesisClientLike, options: ReadShardOptions) {
    this.#client = client;
    this.#options = options;
    this.#limit = options.limit ?? 10_000;
    this.#logger = options.logger ?? silentLogger;
    this.#resumeAfter = options.after;
    this.#hashKeyRange = options.hashKeyRange;
    options.signal?.addEventListener("abort", this.#onOuterAbort, { once: true });
    if (options.signal?.aborted) this.#abort.abort(options.signal.reason);
    this.#retry = {
      ...DEFAULT_RETRY,
      ...options.retry,
      signal: this.#abort.signal,
      onRetry: (error, attempt, delayMs) => {
        recordRetry("kinesis", options, (error as Error)?.name ?? "Error");
        this.#logger.warn("retrying Kinesis call", {
          shard: options.shardId,
          error: (error as Error).name,
          attempt,
          delayMs,
        });
        options.retry?.onRetry?.(error, attempt, delayMs);
      },
    };
  }

  async *pages(): AsyncGenerator<ShardPage> {
    const o = this.#options;
    try {
      this.#prefetch(await this.#acquire());
    } catch (error) {
      if (this.#isAbort(error)) throw this.#abort.signal.reason ?? error;
      throw this.#describe(error);
    }
    for (;;) {
      const out = await this.#takePending();
      const raw = out.Records ?? [];
      const fullPage = raw.length >= this.#limit;
      const millisBehindLatest = out.MillisBehindLatest ?? 0;
      const closed = !out.NextShardIterator;
      const done = closed ||
        (o.doneLagMs !== undefined && !fullPage && millisBehindLatest <= o.doneLagMs);
      if (!done && o.prefetch !== false && raw.length > 0) this.#prefetch(out.NextShardIterator!);
      yield {
        shardId: o.shardId,
        records: await this.#toRecords(raw),
        millisBehindLatest,
        fullPage,
        closed,
        childShards: closed ? (out.ChildShards ?? []).map(toChildShard) : [],
      };
      if (done) return;
      if (!this.#pending) {
        // An empty page while behind is a gap in the shard: move on quickly, within the
        // 5 reads/s a shard allows. An empty page at the tip: wait for new records.
        if (raw.length === 0) {
          const wait = millisBehindLatest > 0 ? GAP_POLL_MS : o.pollIntervalMs ?? 1_000;
          await sleep(wait, this.#abort.signal);
        }
        this.#prefetch(out.NextShardIterator!);
      }
    }
  }

  /** Stops a prefetch in flight and lets go of the caller's signal. A prefetched page that
   * failed for another reason than the abort is logged: nobody reads it, and a close (run from
   * a `finally`) must not hide why the caller stopped. */
  async close(): Promise<void> {
    this.#options.signal?.removeEventListener("abort", this.#onOuterAbort);
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending) return;
    this.#abort.abort();
    try {
      await pending;
    } catch (error) {
      if (this.#isAbort(error)) return;
      this.#logger.warn("prefetched page failed after the reader stopped", {
        shard: this.#options.shardId,
        error: `${(error as Error)?.name}: ${(error as Error)?.message ?? String(error)}`,
      });
    }
  }

  /**
   * Starts fetching the page at `iterator` while the caller works on the current one. The
   * promise gets its handler here, at creation: whatever it ends with (a stop's abort while the
   * caller is busy publishing, a failure) is then never an unhandled rejection. The outcome
   * itself is not lost: {@linkcode #takePending} delivers it, or {@linkcode close} judges it.
   */
  #prefetch(iterator: string): void {
    const pending = this.#fetchPage(iterator);
    pending.catch(() => {});
    this.#pending = pending;
  }

  /** Whether `error` is what aborting this reader (by the caller's signal or a close) caused:
   * the abort's reason, or the `AbortError` the SDK's HTTP handler rejects with. */
  #isAbort(error: unknown): boolean {
    const signal = this.#abort.signal;
    return signal.aborted &&
      (error === signal.reason || (error as Error)?.name === "AbortError");
  }

  async #takePending(): Promise<GetRecordsOutput> {
    try {
      return await this.#pending!;
    } catch (error) {
      if (this.#isAbort(error)) throw this.#abort.signal.reason ?? error;
      throw error instanceof ShardReadError ? error : this.#describe(error);
    } finally {
      this.#pending = undefined;
    }
  }

  async #acquire(): Promise<string> {
    const o = this.#options;
    const { GetShardIteratorCommand } = await kinesisSdk();
    const position = this.#resumeAfter === BOOTSTRAP_SEQUENCE
      ? { ShardIteratorType: "TRIM_HORIZON" as const }
      : {
        ShardIteratorType: "AFTER_SEQUENCE_NUMBER" as const,
        StartingSequenceNumber: this.#resumeAfter,
      };
    const out = await withRetries(
      () =>
        this.#client.send(
          new GetShardIteratorCommand({ StreamName: o.stream, ShardId: o.shardId, ...position }),
          { abortSignal: this.#abort.signal },
        ),
      this.#retry,
    );
    if (!out.ShardIterator) {
      throw new ShardReadError(
        o.shardId,
        `Cannot read shard as Kinesis returned no iterator: current value is "${o.shardId}"`,
      );
    }
    return out.ShardIterator;
  }

  async #fetchPage(iterator: string): Promise<GetRecordsOutput> {
    const { GetRecordsCommand } = await kinesisSdk();
    for (;;) {
      try {
        const out = await withRetries(
          () =>
            this.#client.send(
              new GetRecordsCommand({ ShardIterator: iterator, Limit: this.#limit }),
              { abortSignal: this.#abort.signal },
            ),
          this.#retry,
        );
        const last = out.Records?.at(-1)?.SequenceNumber;
        if (last) this.#resumeAfter = last;
        this.#renewals = 0;
        return out;
      } catch (error) {
        if ((error as Error).name !== "ExpiredIteratorException") throw error;
        if (++this.#renewals > MAX_ITERATOR_RENEWALS) throw error;
        this.#logger.warn("shard iterator expired; acquiring a new one", {
          shard: this.#options.shardId,
          after: this.#resumeAfter,
        });
        iterator = await this.#acquire();
      }
    }
  }

  /** The page's records, KPL aggregates split into user records of this shard's range. */
  async #toRecords(raw: _Record[]): Promise<ShardRecord[]> {
    const records = raw.map(toShardRecord);
    if (this.#options.deaggregate === false || !records.some((r) => isAggregated(r.data))) {
      return records;
    }
    const o = this.#options;
    this.#hashKeyRange ??= (await findShard(this.#client, o.stream, o.shardId, {
      signal: this.#abort.signal,
      retry: this.#retry,
    }))?.hashKeyRange;
    const range = this.#hashKeyRange;
    return records.flatMap((record) => {
      const users = deaggregate(record);
      if (users.length === 1 && users[0] === record) return users;
      return users.filter((user) =>
        !range || inHashKeyRange(hashKeyOf(user.partitionKey, user.explicitHashKey), range)
      );
    });
  }

  #describe(error: unknown): ShardReadError {
    const e = error as Error;
    const { stream, shardId } = this.#options;
    if (e.name === "ResourceNotFoundException") {
      return new ShardReadError(
        shardId,
        `Cannot read shard as the stream or shard does not exist: current value is "${stream}/${shardId}"`,
        { cause: error },
      );
    }
    return new ShardReadError(
      shardId,
      `Cannot read shard "${shardId}" of stream "${stream}" as Kinesis failed: ${e.name}: ${e.message}`,
      { cause: error },
    );
  }
}

function toShardRecord(record: _Record): ShardRecord {
  return {
    sequenceNumber: record.SequenceNumber!,
    partitionKey: record.PartitionKey ?? "",
    data: record.Data ?? new Uint8Array(),
    approximateArrivalTimestamp: record.ApproximateArrivalTimestamp,
  };
}

function toChildShard(child: SdkChildShard): ChildShard {
  return {
    shardId: child.ShardId ?? "",
    parentShards: child.ParentShards ?? [],
    hashKeyRange: child.HashKeyRange
      ? {
        startingHashKey: child.HashKeyRange.StartingHashKey ?? "0",
        endingHashKey: child.HashKeyRange.EndingHashKey ?? "0",
      }
      : undefined,
  };
}
