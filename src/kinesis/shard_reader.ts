/**
 * Reads one Kinesis shard from a position, one GetRecords page at a time, with the next page
 * fetched while the caller works on the current one. Handles throttling and transient errors
 * (backoff), expired iterators (re-acquired after the last record received) and closed shards
 * (the final page is delivered with the child shards).
 *
 * @module
 */
import {
  type _Record,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
} from "@aws-sdk/client-kinesis";
import type { AwsClient } from "../aws_client.ts";
import { ShardReadError } from "../errors.ts";
import { type Logger, silentLogger } from "../logger.ts";
import { BOOTSTRAP_SEQUENCE } from "../snapshot.ts";
import { hashKeyOf, type HashKeyRange, inHashKeyRange } from "./hash_key.ts";
import { deaggregate, isAggregated } from "./kpl.ts";
import { type RetryOptions, sleep, withRetries } from "./_retry.ts";

/** One Kinesis record as handed to a generator. */
export interface ShardRecord {
  /** The record's sequence number, decimal. */
  sequenceNumber: string;
  /** The partition key the producer gave. */
  partitionKey: string;
  /** The payload. */
  data: Uint8Array;
  /** When Kinesis received the record. */
  approximateArrivalTimestamp?: Date;
  /** For a user record taken out of a KPL aggregate: its index inside the aggregate. */
  subSequenceNumber?: number;
  /** For a user record taken out of a KPL aggregate: its explicit hash key, if any. */
  explicitHashKey?: string;
}

/** One page of records from a shard, as handed to a generator. */
export interface RecordBatch {
  /** The shard the records come from. */
  shardId: string;
  /** The records, in sequence order. */
  records: ShardRecord[];
  /** How far behind the newest record of the shard this page ends, in ms. */
  millisBehindLatest: number;
}

/** A child shard named by the final page of a closed shard. */
export interface ChildShard {
  /** The child's shard id. */
  shardId: string;
  /** The child's parents (one after a split, two after a merge). */
  parentShards: string[];
  /** The child's hash key range, decimal. */
  hashKeyRange?: { startingHashKey: string; endingHashKey: string };
}

/** One page read from a shard. */
export interface ShardPage extends RecordBatch {
  /** True when the page held as many records as the request allowed: more are waiting. */
  fullPage: boolean;
  /** True when the shard is closed and this is its last page. */
  closed: boolean;
  /** On the last page of a closed shard, the shards that continue it. */
  childShards: ChildShard[];
}

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
  /** Retries for throttling and transient errors. */
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

const DEFAULT_RETRY: RetryOptions = {
  maxAttempts: 10,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
};
const MAX_ITERATOR_RENEWALS = 10;

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
 * import { BOOTSTRAP_SEQUENCE } from "../snapshot.ts";
 * import { readShard } from "./shard_reader.ts";
 * const pages = readShard(new KinesisClient({}), {
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   after: BOOTSTRAP_SEQUENCE,
 *   doneLagMs: 0,
 * });
 * for await (const page of pages) console.log(page.records.length);
 * ```
 */
export async function* readShard(
  client: AwsClient,
  options: ReadShardOptions,
): AsyncGenerator<ShardPage> {
  const kinesis = client as KinesisClient;
  const limit = options.limit ?? 10_000;
  const logger = options.logger ?? silentLogger;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const signal = inner.signal;
  const retry: RetryOptions = {
    ...DEFAULT_RETRY,
    ...options.retry,
    signal,
    onRetry: (error, attempt, delayMs) =>
      logger.warn("retrying Kinesis call", {
        shard: options.shardId,
        error: (error as Error).name,
        attempt,
        delayMs,
      }),
  };
  // The position to resume from if an iterator expires: after the last record received.
  let resumeAfter = options.after;
  let renewals = 0;

  const describe = (error: unknown): ShardReadError => {
    const e = error as Error;
    if (e.name === "ResourceNotFoundException") {
      return new ShardReadError(
        options.shardId,
        `Cannot read shard as the stream or shard does not exist: current value is "${options.stream}/${options.shardId}"`,
        { cause: error },
      );
    }
    return new ShardReadError(
      options.shardId,
      `Cannot read shard "${options.shardId}" of stream "${options.stream}" as Kinesis failed: ${e.name}: ${e.message}`,
      { cause: error },
    );
  };

  const acquire = async (): Promise<string> => {
    const position = resumeAfter === BOOTSTRAP_SEQUENCE
      ? { ShardIteratorType: "TRIM_HORIZON" as const }
      : {
        ShardIteratorType: "AFTER_SEQUENCE_NUMBER" as const,
        StartingSequenceNumber: resumeAfter,
      };
    const out = await withRetries(
      () =>
        kinesis.send(
          new GetShardIteratorCommand({
            StreamName: options.stream,
            ShardId: options.shardId,
            ...position,
          }),
          { abortSignal: signal },
        ),
      retry,
    );
    if (!out.ShardIterator) {
      throw new ShardReadError(
        options.shardId,
        `Cannot read shard as Kinesis returned no iterator: current value is "${options.shardId}"`,
      );
    }
    return out.ShardIterator;
  };

  const fetchPage = async (
    iterator: string,
  ): Promise<GetRecordsCommandOutput> => {
    for (;;) {
      try {
        const out = await withRetries(
          () =>
            kinesis.send(
              new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }),
              {
                abortSignal: signal,
              },
            ),
          retry,
        );
        const last = out.Records?.at(-1)?.SequenceNumber;
        if (last) resumeAfter = last;
        renewals = 0;
        return out;
      } catch (error) {
        if ((error as Error).name !== "ExpiredIteratorException") throw error;
        if (++renewals > MAX_ITERATOR_RENEWALS) throw error;
        logger.warn("shard iterator expired; acquiring a new one", {
          shard: options.shardId,
          after: resumeAfter,
        });
        iterator = await acquire();
      }
    }
  };

  let hashKeyRange = options.hashKeyRange;
  const toRecords = async (raw: _Record[]): Promise<ShardRecord[]> => {
    const records = raw.map(toShardRecord);
    if (options.deaggregate === false || !records.some((r) => isAggregated(r.data))) {
      return records;
    }
    hashKeyRange ??= await withRetries(
      () => findHashKeyRange(kinesis, options.stream, options.shardId, signal),
      retry,
    );
    const out: ShardRecord[] = [];
    for (const record of records) {
      const users = deaggregate(record);
      if (users.length === 1 && users[0] === record) {
        out.push(record);
        continue;
      }
      for (const user of users) {
        if (
          !hashKeyRange ||
          inHashKeyRange(hashKeyOf(user.partitionKey, user.explicitHashKey), hashKeyRange)
        ) out.push(user);
      }
    }
    return out;
  };

  let pending: Promise<GetRecordsCommandOutput> | undefined;
  try {
    let iterator: string | undefined;
    try {
      iterator = await acquire();
      pending = fetchPage(iterator);
    } catch (error) {
      throw describe(error);
    }
    for (;;) {
      let out: GetRecordsCommandOutput;
      try {
        out = await pending;
      } catch (error) {
        pending = undefined;
        if (signal.aborted) throw signal.reason ?? error;
        throw error instanceof ShardReadError ? error : describe(error);
      }
      pending = undefined;
      const raw = out.Records ?? [];
      const fullPage = raw.length >= limit;
      const millisBehindLatest = out.MillisBehindLatest ?? 0;
      const closed = !out.NextShardIterator;
      const done = closed ||
        (options.doneLagMs !== undefined && !fullPage &&
          millisBehindLatest <= options.doneLagMs);
      if (!done && options.prefetch !== false && raw.length > 0) {
        pending = fetchPage(out.NextShardIterator!);
      }
      const records = await toRecords(raw);
      yield {
        shardId: options.shardId,
        records,
        millisBehindLatest,
        fullPage,
        closed,
        childShards: closed ? (out.ChildShards ?? []).map(toChildShard) : [],
      };
      if (done) return;
      if (!pending) {
        // An empty page while behind is a gap in the shard: move on quickly, within the
        // 5 reads/s a shard allows. An empty page at the tip: wait for new records.
        if (raw.length === 0) {
          await sleep(millisBehindLatest > 0 ? 200 : pollIntervalMs, signal);
        }
        pending = fetchPage(out.NextShardIterator!);
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", onOuterAbort);
    if (pending) {
      inner.abort();
      await pending.catch(() => {});
    }
  }
}

async function findHashKeyRange(
  kinesis: KinesisClient,
  stream: string,
  shardId: string,
  signal: AbortSignal,
): Promise<HashKeyRange | undefined> {
  let token: string | undefined;
  do {
    const page = await kinesis.send(
      new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }),
      { abortSignal: signal },
    );
    const shard = page.Shards?.find((s) => s.ShardId === shardId);
    if (shard?.HashKeyRange) {
      return {
        startingHashKey: shard.HashKeyRange.StartingHashKey!,
        endingHashKey: shard.HashKeyRange.EndingHashKey!,
      };
    }
    token = page.NextToken;
  } while (token);
  return undefined;
}

function toShardRecord(record: _Record): ShardRecord {
  return {
    sequenceNumber: record.SequenceNumber!,
    partitionKey: record.PartitionKey ?? "",
    data: record.Data ?? new Uint8Array(),
    approximateArrivalTimestamp: record.ApproximateArrivalTimestamp,
  };
}

function toChildShard(
  child: {
    ShardId?: string;
    ParentShards?: string[];
    HashKeyRange?: { StartingHashKey?: string; EndingHashKey?: string };
  },
): ChildShard {
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
