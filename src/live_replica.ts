/**
 * The live consumer: {@linkcode LiveReplica} starts one shard's database from the latest
 * snapshot and keeps it current, applying new records in the background while serving
 * read-only queries against a consistent view. The Go original's ShardQueryDB, done properly:
 * generator errors stop it without advancing its position, and `stop()` never hangs.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { join, resolve } from "node:path";
import type { KinesisClientLike } from "./aws_client.ts";
import { applyDeltas, giveUpAfterVanished, restoreInto } from "./_restore.ts";
import { OtherPublicationError } from "./_delta.ts";
import { planRestore, type RestorePlan } from "./restore_plan.ts";
import { ReaderPool } from "./_reader_pool.ts";
import { recordReplicaLag, recordReplicaState } from "./_telemetry.ts";
import { listShardSnapshots } from "./_fetch.ts";
import {
  InvalidArgumentError,
  SnapshotGeneratorError,
  SnapshotIntegrityError,
  SnapshotVanishedError,
} from "./errors.ts";
import { ShardSnapshotFinder } from "./finder.ts";
import type { SnapshotGenerator } from "./generator.ts";
import { isRetryable, type RetryOptions, sleep } from "./kinesis/retry.ts";
import { readShard } from "./kinesis/shard_reader.ts";
import { type Logger, silentLogger } from "./logger.ts";
import type { SnapshotMetadata } from "./metadata.ts";
import type { ChildShard } from "./records.ts";
import {
  assertName,
  assertSequenceNumber,
  BOOTSTRAP_SEQUENCE,
  type Snapshot,
} from "./snapshot_key.ts";
import { SnapshotDb } from "./database.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";
import { WatchedStore } from "./_watched_store.ts";

/** Options for {@linkcode LiveReplica}. */
export interface LiveReplicaOptions {
  /**
   * Where new changes come from. `"kinesis"` (the default): the shard's records, applied
   * through the generator. `"store"`: the points the producer publishes, each new delta applied
   * as it appears (a new full snapshot is downloaded only when no delta leads on), so any number
   * of consumers follow a shard without sharing its 5 reads per second. Following the store, a
   * failed call to it is logged and tried again at the next poll, and an object the producer's
   * retention deleted between the listing and its download makes it list again; only an object
   * that fails verification or a failure to apply stops the replica (`failed`).
   */
  follow?: "kinesis" | "store";
  /** The Kinesis client (a `KinesisClient`); needed to follow Kinesis. */
  kinesis?: KinesisClientLike;
  /** Where to find the snapshot to start from (without it a Kinesis replica starts empty);
   * needed to follow the store. */
  store?: SnapshotStore;
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** A local directory for the replica's database (`<localPath>/<stream>/<shard>/replica.sqlite`). */
  localPath: string;
  /** Turns records into rows, as for the snapshotter; needed to follow Kinesis. */
  generator?: SnapshotGenerator;
  /** How long to wait after an empty read (or, following the store, between listings) before
   * looking again, in ms: at least 200 (Kinesis allows 5 reads per second per shard, shared by
   * every consumer). Defaults to 1,000 for Kinesis and 5,000 for the store. */
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

/** The events a {@linkcode LiveReplica} dispatches, by type. */
export interface LiveReplicaEventMap {
  /** After each batch applied. */
  applied: CustomEvent<AppliedDetail>;
  /** The shard was resharded and every record of it is applied; detail: the child shards. */
  closed: CustomEvent<ChildShard[]>;
  /** The replica stopped on an error; detail: the error. */
  error: CustomEvent<unknown>;
}

/** Options for {@linkcode LiveReplica.start}. */
export interface StartReplicaOptions {
  /** Aborts the start (the download of the snapshot). */
  signal?: AbortSignal;
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
 * import assert from "node:assert/strict";
 * import { startingPosition } from "./live_replica.ts";
 * assert.deepEqual(startingPosition({ sequenceNumber: "42" }), {
 *   ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
 *   StartingSequenceNumber: "42",
 * });
 * assert.deepEqual(startingPosition({ sequenceNumber: "0" }), { ShardIteratorType: "TRIM_HORIZON" });
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
 * Events ({@linkcode LiveReplicaEventMap}): `applied` after each batch, `closed` when the shard
 * was resharded (detail: the child shards), `error` when an error stopped it. `await using`
 * stops it at the end of the scope.
 *
 * @example Usage
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { FileSnapshotStore, kvGenerator, LiveReplica } from "../mod.ts";
 * await using replica = new LiveReplica({
 *   kinesis: new KinesisClient({ maxAttempts: 1 }),
 *   store: new FileSnapshotStore({ root: "./snapshots" }),
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   localPath: "./replica",
 *   generator: kvGenerator(),
 * });
 * replica.addEventListener("applied", (e) => console.log(e.detail.sequenceNumber));
 * await replica.start();
 * const n = await replica.query((db) => db.prepare("SELECT count(*) AS n FROM kv").get());
 * ```
 */
export class LiveReplica extends EventTarget {
  #options: LiveReplicaOptions & { pollIntervalMs: number };
  #logger: Logger;
  #state: ReplicaState = "new";
  /** The database: following Kinesis, written through the generator; following the store, by
   * applying deltas. */
  #db?: SnapshotDb;
  #readers?: ReaderPool;
  #abort = new AbortController();
  #loop?: Promise<void>;
  #lag?: number;
  #sequenceNumber = BOOTSTRAP_SEQUENCE;
  #error?: unknown;
  #dir: string;
  #file: string;
  /** The store, its failed calls told apart from the work around them. */
  #store?: WatchedStore;

  /**
   * Creates a replica; nothing happens until {@linkcode LiveReplica.start}.
   *
   * @param options The clients, the shard, the generator and the settings.
   */
  constructor(options: LiveReplicaOptions) {
    super();
    assertName("stream", options.stream);
    assertName("shard", options.shardId);
    const fromStore = options.follow === "store";
    const poll = options.pollIntervalMs ?? (fromStore ? 5_000 : 1_000);
    if (!Number.isFinite(poll) || poll < 200) {
      throw new InvalidArgumentError(
        `Cannot poll a shard more than 5 times a second: current value is ${poll} ms`,
      );
    }
    const missing = fromStore
      ? (!options.store ? "store" : undefined)
      : (!options.kinesis ? "kinesis" : !options.generator ? "generator" : undefined);
    if (missing) {
      throw new InvalidArgumentError(
        `Cannot follow ${
          fromStore ? "the store" : "Kinesis"
        } without the ${missing} option: current value is undefined`,
      );
    }
    this.#options = { ...options, pollIntervalMs: poll };
    this.#logger = options.logger ?? silentLogger;
    this.#dir = join(resolve(options.localPath), options.stream, options.shardId);
    this.#file = join(this.#dir, "replica.sqlite");
    if (options.store) this.#store = new WatchedStore(options.store);
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

  /** The replica's database file (following the store, a new full snapshot replaces it). */
  get file(): string {
    return this.#readers?.file ?? this.#file;
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
   * Listens for one of the replica's events, typed by {@linkcode LiveReplicaEventMap}.
   *
   * @param type `applied`, `closed` or `error`.
   * @param listener Called with the event.
   * @param options As for `EventTarget.addEventListener`.
   */
  override addEventListener<K extends keyof LiveReplicaEventMap>(
    type: K,
    listener: (event: LiveReplicaEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Listens for an event by any name.
   *
   * @param type The event type.
   * @param listener Called with the event.
   * @param options As for `EventTarget.addEventListener`.
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null | ((event: never) => void),
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  /**
   * Stops listening, as `EventTarget.removeEventListener`.
   *
   * @param type The event type.
   * @param listener The listener given to `addEventListener`.
   * @param options As for `EventTarget.removeEventListener`.
   */
  override removeEventListener<K extends keyof LiveReplicaEventMap>(
    type: K,
    listener: (event: LiveReplicaEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Stops listening for an event by any name.
   *
   * @param type The event type.
   * @param listener The listener given to `addEventListener`.
   * @param options As for `EventTarget.removeEventListener`.
   */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null | ((event: never) => void),
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  /**
   * Downloads the latest snapshot (falling back to an older one that verifies), or starts
   * empty, runs `onStart`, then applies new records in the background. If the start fails,
   * whatever it opened is closed again and the replica is `failed`.
   *
   * @param options Aborts the start.
   * @returns The snapshot it started from, if any.
   */
  async start(options?: StartReplicaOptions): Promise<Snapshot | undefined> {
    if (this.#state !== "new") {
      throw new InvalidArgumentError(
        `Cannot start a replica twice: current value is "${this.#state}"`,
      );
    }
    try {
      const snapshot = await this.#download(options?.signal);
      const final = this.#options.follow === "store"
        ? this.#openFromStore(snapshot)
        : await this.#openForKinesis(snapshot);
      this.#readers = new ReaderPool(this.#file);
      this.#readers.warm();
      this.#setState(final ? "closed" : "running");
      this.#loop = final ? Promise.resolve() : this.#run();
      return snapshot;
    } catch (error) {
      this.#setState("failed");
      this.#error = error;
      this.#closeDatabases();
      throw error;
    }
  }

  /** Following Kinesis: the snapshot (or a new database) opened through the generator. */
  async #openForKinesis(snapshot: Snapshot | undefined): Promise<boolean> {
    const o = this.#options;
    this.#db = await SnapshotDb.open(this.#file, {
      stream: o.stream,
      shardId: o.shardId,
      generator: o.generator!,
      durability: "replica",
      baseKey: snapshot?.key,
    });
    this.#sequenceNumber = this.#db.sequenceNumber;
    return this.#db.final;
  }

  /** Following the store: the snapshot opened as it is; deltas are applied to it. */
  #openFromStore(snapshot: Snapshot | undefined): boolean {
    if (!snapshot) {
      throw new InvalidArgumentError(
        `Cannot follow the store as the shard has no snapshot yet: current value is "${this.#options.stream}/${this.#options.shardId}"`,
      );
    }
    this.#db = SnapshotDb.openPoint(this.#file, "replica");
    this.#sequenceNumber = this.#db.sequenceNumber;
    return this.#db.final;
  }

  /** A fresh replica file: the latest snapshot that verifies, or none. */
  async #download(signal?: AbortSignal): Promise<Snapshot | undefined> {
    const o = this.#options;
    await Deno.mkdir(this.#dir, { recursive: true });
    for (const suffix of ["", "-wal", "-shm", "-journal"]) {
      await Deno.remove(this.#file + suffix).catch(() => {});
    }
    if (!this.#store) return undefined;
    const download = join(this.#dir, ".download");
    try {
      const snapshot = await new ShardSnapshotFinder({
        store: this.#store!,
        stream: o.stream,
        shardId: o.shardId,
        localPath: download,
        logger: this.#logger,
      }).downloadLatestSnapshot({ fallback: true, signal });
      if (snapshot) await Deno.rename(snapshot.localFile, this.#file);
      return snapshot;
    } finally {
      await Deno.remove(download, { recursive: true }).catch(() => {});
    }
  }

  async #run(): Promise<void> {
    try {
      if (this.#options.follow === "store") await this.#followStore();
      else await this.#followKinesis(this.#db!);
    } catch (error) {
      this.#fail(error);
    }
  }

  async #followKinesis(db: SnapshotDb): Promise<void> {
    const o = this.#options;
    const pages = readShard(o.kinesis!, {
      stream: o.stream,
      shardId: o.shardId,
      after: this.#sequenceNumber,
      limit: o.limit,
      pollIntervalMs: o.pollIntervalMs,
      retry: o.retry,
      signal: this.#abort.signal,
      logger: this.#logger,
    });
    for await (const page of pages) {
      // A batch that arrived is applied whole even when stop() was called meanwhile.
      await db.applyPage(page);
      this.#sequenceNumber = db.sequenceNumber;
      this.#setLag(page.millisBehindLatest);
      if (page.records.length > 0) {
        this.#dispatch("applied", {
          records: page.records.length,
          sequenceNumber: this.#sequenceNumber,
          millisBehindLatest: page.millisBehindLatest,
        });
      }
      if (page.closed) return this.#closed(page.childShards);
      if (this.#abort.signal.aborted) break;
    }
  }

  /**
   * Lists the shard's objects every interval and applies what leads on from here. A failed
   * call to the store (or a listing that kept running into deleted objects) is tried again at
   * the next interval: only a refused object or a failure to apply stops the replica.
   */
  async #followStore(): Promise<void> {
    for (;;) {
      await sleep(this.#options.pollIntervalMs, this.#abort.signal);
      try {
        if (await this.#catchUpWithStore()) return;
      } catch (error) {
        if (this.#abort.signal.aborted || !this.#transient(error)) throw error;
        this.#logger.warn("following the store failed; trying again at the next poll", {
          shard: this.#options.shardId,
          error: (error as Error)?.message ?? String(error),
        });
      }
    }
  }

  /**
   * Lists the shard and applies what leads on from here. An object deleted since the listing
   * (the producer's retention) makes it list again and re-plan from the point reached.
   *
   * @returns True when the shard is final.
   */
  async #catchUpWithStore(): Promise<boolean> {
    const o = this.#options;
    for (let listings = 1;; listings++) {
      const before = this.#db!.metadata();
      try {
        const objects = await listShardSnapshots(
          this.#store!,
          o.stream,
          o.shardId,
          "",
          this.#abort.signal,
        );
        const plan = planRestore(objects, { from: this.#sequenceNumber });
        if (!plan || (plan.sequenceNumber === this.#sequenceNumber && !plan.final)) return false;
        if (plan.path[0]?.kind === "full") await this.#replaceFromStore(plan);
        else await this.#applyFromHere(plan, objects);
        return this.#storePointApplied(before);
      } catch (error) {
        if (!(error instanceof SnapshotVanishedError)) throw error;
        // The deltas before the one found gone stay applied: say so, and go on from there.
        const moved = this.#db!.sequenceNumber !== before.sequenceNumber;
        if (moved && this.#storePointApplied(before)) {
          return true;
        }
        giveUpAfterVanished(error, listings);
        this.#logger.warn("snapshot deleted since the shard was listed; listing again", {
          shard: o.shardId,
          key: error.key,
        });
      }
    }
  }

  /** Whether an error of following the store is worth trying again at the next poll: a failed
   * call to the store, or objects found gone listing after listing. */
  #transient(error: unknown): boolean {
    if (error instanceof SnapshotVanishedError) return true;
    return this.#store!.threw(error) && isRetryable(error);
  }

  /** After a store point was applied: events, and the end when the shard is final. */
  #storePointApplied(before: SnapshotMetadata): boolean {
    const meta = this.#db!.metadata();
    this.#sequenceNumber = meta.sequenceNumber;
    const arrived = meta.lastArrivalAt ? Date.parse(meta.lastArrivalAt) : undefined;
    const lag = arrived === undefined ? 0 : Math.max(0, Date.now() - arrived);
    this.#setLag(lag);
    this.#dispatch("applied", {
      records: meta.recordsApplied - before.recordsApplied,
      sequenceNumber: meta.sequenceNumber,
      millisBehindLatest: lag,
    });
    if (!meta.final) return false;
    this.#closed(meta.childShards);
    return true;
  }

  /**
   * Applies the deltas that lead on from the point held. When the point held is another
   * publication of its point than the one they were made on (the store lost it and a producer
   * published it again with other contents), the point is taken from the store whole instead.
   */
  async #applyFromHere(plan: RestorePlan, objects: Snapshot[]): Promise<void> {
    const scratch = `${this.#file}.delta`;
    try {
      await applyDeltas(this.#store!, this.#db!, plan.path, scratch, this.#abort.signal);
    } catch (error) {
      const whole = planRestore(objects);
      if (!(error instanceof OtherPublicationError) || !whole) throw error;
      this.#logger.warn(
        "the point held was published again with other contents; restoring from the store",
        { shard: this.#options.shardId, point: this.#sequenceNumber, key: error.key },
      );
      await this.#replaceFromStore(whole);
    }
  }

  /** No delta leads on from here (a final snapshot, or a gap): a new full snapshot replaces
   * the database; queries in flight finish on the old one. */
  async #replaceFromStore(plan: RestorePlan): Promise<void> {
    const next = join(this.#dir, `replica-${crypto.randomUUID()}.sqlite`);
    await restoreInto(this.#store!, plan, next, { signal: this.#abort.signal });
    this.#db!.close();
    this.#db = SnapshotDb.openPoint(next, "replica");
    await this.#readers!.replace(next);
  }

  #closed(children: ChildShard[]): void {
    this.#setState("closed");
    this.#dispatch("closed", children);
  }

  #fail(error: unknown): void {
    // After stop(), a cancelled read is the expected end; a failure to apply is not.
    const applying = error instanceof SnapshotGeneratorError ||
      error instanceof SnapshotIntegrityError;
    if (this.#abort.signal.aborted && !applying) return;
    this.#setState("failed");
    this.#error = error;
    this.#logger.warn("replica stopped on an error", {
      shard: this.#options.shardId,
      error: (error as Error)?.message ?? String(error),
    });
    this.#dispatch("error", error);
  }

  #dispatch<K extends keyof LiveReplicaEventMap>(
    type: K,
    detail: LiveReplicaEventMap[K]["detail"],
  ): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * Runs read-only work against a consistent view: a read transaction on a read-only
   * connection of its own, so batches committed meanwhile are not seen half-way. Queries may
   * overlap: each holds its own connection for as long as it runs.
   *
   * @param fn The work; it gets a read-only database.
   * @returns What `fn` returns.
   */
  async query<T>(fn: (db: DatabaseSync) => T | Promise<T>): Promise<T> {
    if (!this.#readers || this.#state === "stopped" || !this.#db) {
      throw new InvalidArgumentError(
        `Cannot query a replica that is not started: current value is "${this.#state}"`,
      );
    }
    return await this.#readers.query(fn);
  }

  /**
   * Stops reading, waits for the batch being applied, and closes the database. Returns at
   * once when the shard was closed or the replica failed.
   */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#abort.abort();
    await this.#loop;
    this.#closeDatabases();
    if (this.#state === "running" || this.#state === "new") this.#setState("stopped");
  }

  /** Stops the replica: `await using replica = new LiveReplica(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Moves to a state, and tells the state metric (a replica that never started is not in it). */
  #setState(to: ReplicaState): void {
    const from = this.#state;
    this.#state = to;
    if (from === to || (from === "new" && to !== "running" && to !== "closed")) return;
    const o = this.#options;
    recordReplicaState(
      { stream: o.stream, shardId: o.shardId },
      from === "new" ? undefined : from,
      to,
    );
  }

  #setLag(ms: number): void {
    this.#lag = ms;
    const o = this.#options;
    recordReplicaLag({ stream: o.stream, shardId: o.shardId }, o.follow ?? "kinesis", ms);
  }

  #closeDatabases(): void {
    this.#readers?.close();
    this.#db?.close();
    this.#db = undefined;
  }
}
