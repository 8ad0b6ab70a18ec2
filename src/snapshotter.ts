/**
 * The producer: {@linkcode ShardSnapshotter} brings the latest snapshot of one shard up to
 * date and publishes it.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { encodeFile } from "./_codec.ts";
import { anySignal } from "./_signal.ts";
import { fetchSnapshot, listShardSnapshots, newest } from "./_snapshot_io.ts";
import { withWorkDir } from "./_work_dir.ts";
import type { KinesisClientLike } from "./aws_client.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { SnapshotGenerator } from "./generator.ts";
import type { HashKeyRange } from "./kinesis/hash_key.ts";
import { findShard } from "./kinesis/list_shards.ts";
import type { RetryOptions } from "./kinesis/_retry.ts";
import { readShard, type ReadShardOptions } from "./kinesis/shard_reader.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { FORMAT_VERSION } from "./metadata.ts";
import type { ShardPage } from "./records.ts";
import {
  assertName,
  localSnapshotFile,
  type Snapshot,
  type SnapshotEncoding,
  snapshotKey,
  type SnapshotKeyParts,
} from "./snapshot.ts";
import { type ParentFile, type SeedFromParents, SnapshotDb } from "./snapshot_db.ts";
import { ObjectExistsError, type SnapshotStore } from "./store/snapshot_store.ts";

/** A source of pages of records, called like {@linkcode readShard}. */
export type RecordSource = (
  kinesis: KinesisClientLike,
  options: ReadShardOptions,
) => AsyncIterable<ShardPage>;

/** Progress of a snapshot run, reported after each batch and each phase. */
export interface SnapshotProgress {
  /** The shard. */
  shardId: string;
  /** What the run is doing. */
  phase: "download" | "catch-up" | "compact" | "upload" | "done";
  /** Records applied in this run so far. */
  recordsApplied: number;
  /** The last sequence number applied. */
  sequenceNumber: string;
  /** How far behind the shard's tip the last batch ended, in ms. */
  millisBehindLatest?: number;
  /** Bytes uploaded so far (upload phase). */
  bytesUploaded?: number;
}

/** Options for {@linkcode ShardSnapshotter}. */
export interface ShardSnapshotterOptions {
  /** The Kinesis client (a `KinesisClient`; see `retry` for its `maxAttempts`). */
  kinesis: KinesisClientLike;
  /** Where snapshots are found and published. */
  store: SnapshotStore;
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** A local directory for working files and the produced snapshot (created if missing). */
  localPath: string;
  /** Turns records into rows. */
  generator: SnapshotGenerator;
  /** Stop once a (not full) page ends at most this many ms behind the shard's tip.
   * Defaults to 0: read until caught up. */
  doneLagMs?: number;
  /** Hand free pages back before upload (`PRAGMA incremental_vacuum`). Defaults to true. */
  compact?: boolean;
  /** How to encode the stored snapshot. Defaults to `"zstd"`. */
  encoding?: SnapshotEncoding;
  /** Records per GetRecords call. Defaults to 10,000. */
  limit?: number;
  /** Fetch the next page while the current one is applied. Defaults to true. */
  prefetch?: boolean;
  /** The retry budget of each Kinesis call (see {@linkcode ReadShardOptions.retry}): the one
   * retry loop around Kinesis calls; give the client `maxAttempts: 1`. S3 calls are retried by
   * the S3 client itself (its `maxAttempts`). */
  retry?: Partial<RetryOptions>;
  /** Where progress and retries are logged. */
  logger?: Logger;
  /** Called after each batch and phase. */
  onProgress?: (progress: SnapshotProgress) => void;
  /** For a child shard's first snapshot: its parents' final snapshots, handed to the
   * generator's `onParents` to seed it. Ignored once the shard has a snapshot. */
  parents?: Snapshot[];
  /** The shard's hash key range (looked up when needed and not given). */
  hashKeyRange?: HashKeyRange;
  /** Skip records the generator throws on instead of failing the run: each is logged (shard,
   * sequence number, partition key, error) as a warning and counted in the snapshot's
   * `recordsSkipped`. Defaults to false. */
  skipBadRecords?: boolean;
  /** Where pages of records come from. Defaults to {@linkcode readShard} (Kinesis); another
   * source (a file, a test or benchmark feed) gets the same options. */
  source?: RecordSource;
  /** Aborts every run of this snapshotter; nothing is published. */
  signal?: AbortSignal;
}

/** Options for {@linkcode ShardSnapshotter.snapshotShard}. */
export interface SnapshotShardOptions {
  /** Aborts this run; nothing is published. */
  signal?: AbortSignal;
}

/**
 * Brings one shard's snapshot up to date: finds the latest snapshot (or bootstraps an empty
 * one), applies the records after it through the generator, one transaction per batch, stops
 * when caught up or when the shard is closed, compacts, and publishes the result under a key
 * that carries its sequence number.
 *
 * @example Usage
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { FileSnapshotStore, ShardSnapshotter } from "../mod.ts";
 * const snapshotter = new ShardSnapshotter({
 *   kinesis: new KinesisClient({ maxAttempts: 1 }),
 *   store: new FileSnapshotStore({ root: "./snapshots" }),
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   localPath: "./work",
 *   generator: {
 *     onStart(db) {
 *       db.exec("CREATE TABLE IF NOT EXISTS events (seq TEXT PRIMARY KEY, data BLOB)");
 *     },
 *     onRecords(db, batch) {
 *       const insert = db.prepare("INSERT INTO events VALUES (?, ?)");
 *       for (const r of batch.records) insert.run(r.sequenceNumber, r.data);
 *     },
 *   },
 * });
 * const snapshot = await snapshotter.snapshotShard();
 * console.log(snapshot.key, snapshot.sequenceNumber);
 * ```
 */
export class ShardSnapshotter {
  #options: ShardSnapshotterOptions;

  /**
   * Creates a snapshotter for one shard.
   *
   * @param options The clients, the shard, the generator and the settings.
   */
  constructor(options: ShardSnapshotterOptions) {
    assertName("stream", options.stream);
    assertName("shard", options.shardId);
    if (!options.localPath) {
      throw new InvalidArgumentError(
        `Cannot snapshot as the local path is empty: current value is ${
          JSON.stringify(options.localPath)
        }`,
      );
    }
    const lag = options.doneLagMs ?? 0;
    if (!Number.isFinite(lag) || lag < 0) {
      throw new InvalidArgumentError(
        `Cannot snapshot as the done lag must be a number of ms >= 0: current value is ${lag}`,
      );
    }
    if (typeof options.generator?.onRecords !== "function") {
      throw new InvalidArgumentError(
        "Cannot snapshot as the generator has no onRecords method: current value is " +
          typeof options.generator,
      );
    }
    this.#options = { ...options, localPath: resolve(options.localPath) };
  }

  /**
   * Runs one snapshot: catch up from the latest snapshot and publish the result.
   *
   * With no new records the existing latest snapshot is returned and nothing is uploaded. A
   * failed run publishes nothing, leaves the previous latest snapshot untouched and removes
   * its working files.
   *
   * @param options Aborts this run.
   * @returns The latest snapshot after the run, with `localFile` holding the produced
   * database when this run published one.
   */
  async snapshotShard(options?: SnapshotShardOptions): Promise<Snapshot> {
    const o = this.#options;
    const signal = anySignal(o.signal, options?.signal);
    return await withWorkDir(
      o.localPath,
      `${o.stream}.${o.shardId}`,
      (dir) => new SnapshotRun(o, dir, signal).run(),
    );
  }
}

/** One run of a snapshotter, phase by phase, in its own working directory. */
class SnapshotRun {
  #o: ShardSnapshotterOptions;
  #dir: string;
  #signal?: AbortSignal;
  #log: Logger;
  #fields: { stream: string; shard: string };
  #applied = 0;

  constructor(options: ShardSnapshotterOptions, workDir: string, signal?: AbortSignal) {
    this.#o = options;
    this.#dir = workDir;
    this.#signal = signal;
    this.#log = options.logger ?? silentLogger;
    this.#fields = { stream: options.stream, shard: options.shardId };
  }

  async run(): Promise<Snapshot> {
    const base = await this.#findBase();
    if (base?.final) {
      this.#log.info("shard is closed and its final snapshot exists", {
        ...this.#fields,
        key: base.key,
      });
      return base;
    }
    const db = await this.#open(base);
    try {
      await this.#catchUp(db);
      if (base && this.#applied === 0 && !db.final) {
        this.#log.info("no new records; the latest snapshot stands", {
          ...this.#fields,
          key: base.key,
        });
        return base;
      }
      this.#compact(db);
    } finally {
      db.close();
    }
    return await this.#publish(db);
  }

  #progress(p: Omit<SnapshotProgress, "shardId">): void {
    this.#o.onProgress?.({ shardId: this.#o.shardId, ...p });
  }

  /** Phase 1: the shard's latest published snapshot, if any. */
  async #findBase(): Promise<Snapshot | undefined> {
    const o = this.#o;
    return newest(
      await listShardSnapshots(o.store, o.stream, o.shardId, o.localPath, this.#signal),
    );
  }

  /** Phase 2: the working database: the base downloaded, or a new one (seeded or empty). */
  async #open(base: Snapshot | undefined): Promise<SnapshotDb> {
    const o = this.#o;
    const file = join(this.#dir, "snapshot.sqlite");
    if (base) {
      this.#progress({ phase: "download", recordsApplied: 0, sequenceNumber: base.sequenceNumber });
      this.#log.info("downloading latest snapshot", { ...this.#fields, key: base.key });
      await fetchSnapshot(o.store, base, file, this.#signal);
    }
    const seed = !base && o.parents?.length && o.generator.onParents
      ? await this.#downloadParents(o.parents)
      : undefined;
    return await SnapshotDb.open(file, {
      stream: o.stream,
      shardId: o.shardId,
      generator: o.generator,
      baseKey: base?.key,
      seed,
      onSkip: o.skipBadRecords
        ? (record, shardId, error) =>
          this.#log.warn("skipped a record the generator failed on", {
            shard: shardId,
            sequenceNumber: record.sequenceNumber,
            subSequenceNumber: record.subSequenceNumber,
            partitionKey: record.partitionKey,
            error: (error as Error)?.message ?? String(error),
          })
        : undefined,
    });
  }

  async #downloadParents(parents: Snapshot[]): Promise<SeedFromParents> {
    const o = this.#o;
    const files: ParentFile[] = [];
    for (const parent of parents) {
      const file = join(this.#dir, `parent-${parent.shardId}.sqlite`);
      this.#log.info("downloading parent's final snapshot", {
        ...this.#fields,
        parent: parent.shardId,
        key: parent.key,
      });
      const metadata = await fetchSnapshot(o.store, parent, file, this.#signal);
      files.push({ shardId: parent.shardId, file, metadata });
    }
    const hashKeyRange = o.hashKeyRange ??
      (await findShard(o.kinesis, o.stream, o.shardId, this.#signal))?.hashKeyRange;
    if (!hashKeyRange) {
      throw new InvalidArgumentError(
        `Cannot seed shard from its parents as the stream has no such shard: current value is "${o.shardId}"`,
      );
    }
    return { parents: files, hashKeyRange };
  }

  /** Phase 3: apply the records after the base until caught up or the shard closes. */
  async #catchUp(db: SnapshotDb): Promise<void> {
    const o = this.#o;
    this.#log.info("catching up", { ...this.#fields, after: db.sequenceNumber });
    const pages = (o.source ?? readShard)(o.kinesis, {
      hashKeyRange: o.hashKeyRange,
      stream: o.stream,
      shardId: o.shardId,
      after: db.sequenceNumber,
      doneLagMs: o.doneLagMs ?? 0,
      limit: o.limit,
      prefetch: o.prefetch,
      retry: o.retry,
      signal: this.#signal,
      logger: this.#log,
    });
    for await (const page of pages) {
      this.#applied += await db.applyPage(page);
      this.#progress({
        phase: "catch-up",
        recordsApplied: this.#applied,
        sequenceNumber: db.sequenceNumber,
        millisBehindLatest: page.millisBehindLatest,
      });
      this.#log.debug("applied batch", {
        ...this.#fields,
        records: page.records.length,
        millisBehindLatest: page.millisBehindLatest,
      });
    }
  }

  /** Phase 4: hand free pages back before the file is encoded. */
  #compact(db: SnapshotDb): void {
    if (this.#o.compact === false) return;
    this.#progress({
      phase: "compact",
      recordsApplied: this.#applied,
      sequenceNumber: db.sequenceNumber,
    });
    db.compact();
  }

  /** Phases 5 and 6: encode the closed database and publish it; keep it as `localFile`. */
  async #publish(db: SnapshotDb): Promise<Snapshot> {
    const o = this.#o;
    const encoding = o.encoding ?? "zstd";
    const parts: SnapshotKeyParts = {
      stream: o.stream,
      shardId: o.shardId,
      sequenceNumber: db.sequenceNumber,
      final: db.final,
      encoding,
    };
    const stored = join(this.#dir, "upload.bin");
    const encoded = await encodeFile(db.file, stored, encoding);
    const key = snapshotKey(parts);
    this.#log.info("publishing snapshot", {
      ...this.#fields,
      key,
      records: this.#applied,
      rawBytes: encoded.rawSize,
      storedBytes: encoded.storedSize,
    });
    await this.#upload(key, stored, {
      sha256: encoded.sha256,
      "raw-size": String(encoded.rawSize),
      "format-version": String(FORMAT_VERSION),
    }, parts.sequenceNumber);
    const localFile = localSnapshotFile(o.localPath, parts);
    await Deno.mkdir(dirname(localFile), { recursive: true });
    await Deno.rename(db.file, localFile);
    this.#progress({
      phase: "done",
      recordsApplied: this.#applied,
      sequenceNumber: db.sequenceNumber,
    });
    return { ...parts, key, localFile, size: encoded.storedSize, lastModified: new Date() };
  }

  async #upload(
    key: string,
    file: string,
    metadata: Record<string, string>,
    sequenceNumber: string,
  ): Promise<void> {
    const upload = (bytesUploaded: number) =>
      this.#progress({
        phase: "upload",
        recordsApplied: this.#applied,
        sequenceNumber,
        bytesUploaded,
      });
    upload(0);
    try {
      await this.#o.store.put(key, file, {
        metadata,
        ifNoneMatch: true,
        signal: this.#signal,
        onProgress: upload,
      });
    } catch (error) {
      if (!(error instanceof ObjectExistsError)) throw error;
      // Another producer published the same position first: its snapshot stands.
      this.#log.warn("another producer published this snapshot first; keeping theirs", {
        ...this.#fields,
        key,
      });
    }
  }
}
