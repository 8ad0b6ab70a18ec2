/**
 * The live consumer: {@linkcode LiveReplica} starts one shard's database from the latest
 * snapshot and keeps it current, applying new records in the background while serving
 * read-only queries against a consistent view. The Go original's ShardQueryDB, done properly:
 * generator errors stop it without advancing its position, and `stop()` never hangs.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join, resolve } from "node:path";
import { inTransaction, PageApplier } from "./_apply.ts";
import type { AwsClient } from "./aws_client.ts";
import { InvalidArgumentError, SnapshotGeneratorError } from "./errors.ts";
import { ShardSnapshotFinder } from "./finder.ts";
import type { SnapshotGenerator } from "./generator.ts";
import type { RetryOptions } from "./kinesis/_retry.ts";
import { type ChildShard, readShard } from "./kinesis/shard_reader.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { initSnapshotMetadata, readSnapshotMetadata } from "./metadata.ts";
import { assertName, assertSequenceNumber, BOOTSTRAP_SEQUENCE, type Snapshot } from "./snapshot.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** Options for {@linkcode LiveReplica}. */
export interface LiveReplicaOptions {
  /** The Kinesis client (a `KinesisClient`). */
  kinesis: AwsClient;
  /** Where to find the snapshot to start from; without it the replica starts empty. */
  store?: SnapshotStore;
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** A local directory for the replica's database (`<localPath>/<stream>/<shard>/replica.sqlite`). */
  localPath: string;
  /** Turns records into rows, as for the snapshotter. */
  generator: SnapshotGenerator;
  /** How long to wait after an empty read before reading again, in ms: at least 200 (Kinesis
   * allows 5 reads per second per shard, shared by every consumer). Defaults to 1,000. */
  pollIntervalMs?: number;
  /** Records per GetRecords call. Defaults to 10,000. */
  limit?: number;
  /** Retries of throttled and failed Kinesis calls. */
  retry?: Partial<RetryOptions>;
  /** Where progress and retries are logged. */
  logger?: Logger;
}

/** Where a replica is. */
export type ReplicaState = "new" | "running" | "closed" | "failed" | "stopped";

/** Details of an `applied` event. */
export interface AppliedDetail {
  /** Records applied in the batch. */
  records: number;
  /** The last sequence number applied. */
  sequenceNumber: string;
  /** How far behind the shard's tip the batch ended, in ms. */
  millisBehindLatest: number;
}

/** The Kinesis iterator position that continues after a snapshot. */
export type StartingPosition =
  | { ShardIteratorType: "TRIM_HORIZON" }
  | { ShardIteratorType: "AFTER_SEQUENCE_NUMBER"; StartingSequenceNumber: string };

/**
 * The position a consumer (the KCL or your own) continues from after a snapshot: right after
 * its sequence number, or the shard's start for an empty bootstrap snapshot.
 *
 * @param snapshot A snapshot (or anything with its sequence number).
 * @returns `GetShardIterator` parameters.
 *
 * @example Usage
 * ```ts
 * import { startingPosition } from "./live_replica.ts";
 * startingPosition({ sequenceNumber: "42" });
 * // { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: "42" }
 * ```
 */
export function startingPosition(snapshot: Pick<Snapshot, "sequenceNumber">): StartingPosition {
  assertSequenceNumber(snapshot.sequenceNumber);
  return snapshot.sequenceNumber === BOOTSTRAP_SEQUENCE ? { ShardIteratorType: "TRIM_HORIZON" } : {
    ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
    StartingSequenceNumber: snapshot.sequenceNumber,
  };
}

/**
 * A shard's database, started from the latest snapshot and kept current.
 *
 * Events: `applied` (a `CustomEvent<AppliedDetail>` after each batch), `closed` (the shard
 * was resharded; detail: the child shards), `error` (detail: the error that stopped it).
 *
 * @example Usage
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { FileSnapshotStore, kvGenerator, LiveReplica } from "../mod.ts";
 * const replica = new LiveReplica({
 *   kinesis: new KinesisClient({}),
 *   store: new FileSnapshotStore({ root: "./snapshots" }),
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   localPath: "./replica",
 *   generator: kvGenerator(),
 * });
 * await replica.start();
 * const n = await replica.query((db) => db.prepare("SELECT count(*) AS n FROM kv").get());
 * await replica.stop();
 * ```
 */
export class LiveReplica extends EventTarget {
  #options: LiveReplicaOptions;
  #logger: Logger;
  #state: ReplicaState = "new";
  #writer?: DatabaseSync;
  #reader?: DatabaseSync;
  #abort = new AbortController();
  #loop?: Promise<void>;
  #lag?: number;
  #sequenceNumber = BOOTSTRAP_SEQUENCE;
  #error?: unknown;
  #file: string;

  /**
   * Creates a replica; nothing happens until {@linkcode LiveReplica.start}.
   *
   * @param options The clients, the shard, the generator and the settings.
   */
  constructor(options: LiveReplicaOptions) {
    super();
    assertName("stream", options.stream);
    assertName("shard", options.shardId);
    const poll = options.pollIntervalMs ?? 1_000;
    if (!Number.isFinite(poll) || poll < 200) {
      throw new InvalidArgumentError(
        `Cannot poll a shard more than 5 times a second: current value is ${poll} ms`,
      );
    }
    this.#options = { ...options, pollIntervalMs: poll };
    this.#logger = options.logger ?? silentLogger;
    this.#file = join(
      resolve(options.localPath),
      options.stream,
      options.shardId,
      "replica.sqlite",
    );
  }

  /** Where the replica is: `new`, `running`, `closed` (shard resharded), `failed`, `stopped`. */
  get state(): ReplicaState {
    return this.#state;
  }

  /** The last sequence number applied. */
  get sequenceNumber(): string {
    return this.#sequenceNumber;
  }

  /** The error that stopped the replica, when `state` is `failed`. */
  get error(): unknown {
    return this.#error;
  }

  /** The replica's database file. */
  get file(): string {
    return this.#file;
  }

  /**
   * How far behind the shard's tip the last batch ended, in ms.
   *
   * @returns The lag, or `undefined` before the first read.
   */
  lag(): number | undefined {
    return this.#lag;
  }

  /**
   * Downloads the latest snapshot (falling back to an older one that verifies), or starts
   * empty, runs `onStart`, then applies new records in the background.
   *
   * @returns The snapshot it started from, if any.
   */
  async start(): Promise<Snapshot | undefined> {
    if (this.#state !== "new") {
      throw new InvalidArgumentError(
        `Cannot start a replica twice: current value is "${this.#state}"`,
      );
    }
    const o = this.#options;
    await Deno.mkdir(join(this.#file, ".."), { recursive: true });
    for (const suffix of ["", "-wal", "-shm", "-journal"]) {
      await Deno.remove(this.#file + suffix).catch(() => {});
    }
    let snapshot: Snapshot | undefined;
    if (o.store) {
      const finder = new ShardSnapshotFinder({
        store: o.store,
        stream: o.stream,
        shardId: o.shardId,
        localPath: join(this.#file, "..", ".download"),
        logger: this.#logger,
      });
      snapshot = await finder.downloadLatestSnapshot({ fallback: true });
      if (snapshot) await Deno.rename(snapshot.localFile, this.#file);
      await Deno.remove(join(this.#file, "..", ".download"), { recursive: true }).catch(() => {});
    }
    const db = new DatabaseSync(this.#file);
    this.#writer = db;
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
    let meta = readSnapshotMetadata(db);
    if (!meta) {
      db.exec("PRAGMA auto_vacuum = INCREMENTAL");
      const start = assertSequenceNumber(
        String(await o.generator.bootstrap?.(db) ?? BOOTSTRAP_SEQUENCE),
      );
      initSnapshotMetadata(db, { stream: o.stream, shardId: o.shardId, sequenceNumber: start });
      meta = readSnapshotMetadata(db)!;
    }
    this.#sequenceNumber = meta.sequenceNumber;
    await inTransaction(db, async () => await o.generator.onStart?.(db));
    this.#reader = new DatabaseSync(this.#file, { readOnly: true });
    if (meta.final) {
      this.#state = "closed";
      this.#loop = Promise.resolve();
      return snapshot;
    }
    this.#state = "running";
    this.#loop = this.#run(db);
    return snapshot;
  }

  async #run(db: DatabaseSync): Promise<void> {
    const o = this.#options;
    const applier = new PageApplier(db, o.generator);
    try {
      for await (
        const page of readShard(o.kinesis, {
          stream: o.stream,
          shardId: o.shardId,
          after: this.#sequenceNumber,
          limit: o.limit,
          pollIntervalMs: o.pollIntervalMs,
          retry: o.retry,
          signal: this.#abort.signal,
          logger: this.#logger,
        })
      ) {
        // A batch that arrived is applied whole even when stop() was called meanwhile.
        if (page.records.length > 0) {
          const last = page.records[page.records.length - 1].sequenceNumber;
          await applier.apply(page, last);
          this.#sequenceNumber = last;
        }
        this.#lag = page.millisBehindLatest;
        if (page.records.length > 0) {
          this.dispatchEvent(
            new CustomEvent<AppliedDetail>("applied", {
              detail: {
                records: page.records.length,
                sequenceNumber: this.#sequenceNumber,
                millisBehindLatest: page.millisBehindLatest,
              },
            }),
          );
        }
        if (page.closed) {
          applier.markFinal(page.childShards);
          this.#state = "closed";
          this.dispatchEvent(new CustomEvent<ChildShard[]>("closed", { detail: page.childShards }));
          return;
        }
        if (this.#abort.signal.aborted) break;
      }
    } catch (error) {
      // After stop(), a cancelled read is the expected end; a generator failure is not.
      if (this.#abort.signal.aborted && !(error instanceof SnapshotGeneratorError)) return;
      this.#state = "failed";
      this.#error = error;
      this.#logger.warn("replica stopped on an error", {
        shard: o.shardId,
        error: (error as Error)?.message ?? String(error),
      });
      this.dispatchEvent(new CustomEvent("error", { detail: error }));
    }
  }

  /**
   * Runs read-only work against a consistent view: a read transaction on a separate
   * read-only connection, so batches committed meanwhile are not seen half-way.
   *
   * @param fn The work; it gets a read-only database.
   * @returns What `fn` returns.
   */
  async query<T>(fn: (db: DatabaseSync) => T | Promise<T>): Promise<T> {
    const reader = this.#reader;
    if (!reader) {
      throw new InvalidArgumentError(
        `Cannot query a replica that is not started: current value is "${this.#state}"`,
      );
    }
    reader.exec("BEGIN");
    try {
      return await fn(reader);
    } finally {
      if (reader.isTransaction) reader.exec("COMMIT");
    }
  }

  /**
   * Stops reading, waits for the batch being applied, and closes the database. Returns at
   * once when the shard was closed or the replica failed.
   */
  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "new") {
      this.#state = "stopped";
      return;
    }
    this.#abort.abort();
    await this.#loop;
    this.#reader?.close();
    this.#writer?.close();
    this.#reader = undefined;
    this.#writer = undefined;
    if (this.#state === "running") this.#state = "stopped";
  }
}
