/**
 * The producer: {@linkcode ShardSnapshotter} brings the latest snapshot of one shard up to
 * date and publishes it.
 *
 * @module
 */
import type { AwsClient } from "./aws_client.ts";
import { listStreamShards } from "./kinesis/list_shards.ts";
import { DatabaseSync } from "node:sqlite";
import { dirname, join, resolve } from "node:path";
import { inTransaction, PageApplier } from "./_apply.ts";
import { encodeFile } from "./_codec.ts";
import { fetchSnapshot, listShardSnapshots, newest } from "./_snapshot_io.ts";
import { withWorkDir } from "./_work_dir.ts";
import { InvalidArgumentError, SnapshotIntegrityError } from "./errors.ts";
import type { ParentSnapshot, SnapshotGenerator } from "./generator.ts";
import type { HashKeyRange } from "./kinesis/hash_key.ts";
import type { RetryOptions } from "./kinesis/_retry.ts";
import {
  type ChildShard,
  readShard,
  type ReadShardOptions,
  type ShardPage,
} from "./kinesis/shard_reader.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { FORMAT_VERSION, initSnapshotMetadata, readSnapshotMetadata } from "./metadata.ts";
import {
  assertName,
  assertSequenceNumber,
  BOOTSTRAP_SEQUENCE,
  localSnapshotFile,
  type Snapshot,
  type SnapshotEncoding,
  snapshotKey,
} from "./snapshot.ts";
import { ObjectExistsError, type SnapshotStore } from "./store/snapshot_store.ts";

/** A source of pages of records, called like {@linkcode readShard}. */
export type RecordSource = (
  kinesis: AwsClient,
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
  /** The Kinesis client (a `KinesisClient`). */
  kinesis: AwsClient;
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
  /** Retries of throttled and failed Kinesis calls. */
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
  /** Aborts the run; nothing is published. */
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
 *   kinesis: new KinesisClient({}),
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
  #logger: Logger;

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
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Runs one snapshot: catch up from the latest snapshot and publish the result.
   *
   * With no new records the existing latest snapshot is returned and nothing is uploaded. A
   * failed run publishes nothing, leaves the previous latest snapshot untouched and removes
   * its working files.
   *
   * @returns The latest snapshot after the run, with `localFile` holding the produced
   * database when this run published one.
   */
  async snapshotShard(): Promise<Snapshot> {
    const o = this.#options;
    return await withWorkDir(
      o.localPath,
      `${o.stream}.${o.shardId}`,
      (dir) => this.#run(dir),
    );
  }

  async #run(workDir: string): Promise<Snapshot> {
    const o = this.#options;
    const log = this.#logger;
    const fields = { stream: o.stream, shard: o.shardId };
    const progress = (p: Omit<SnapshotProgress, "shardId">) =>
      o.onProgress?.({ shardId: o.shardId, ...p });

    const latest = newest(
      await listShardSnapshots(o.store, o.stream, o.shardId, o.localPath),
    );
    if (latest?.final) {
      log.info("shard is closed and its final snapshot exists", {
        ...fields,
        key: latest.key,
      });
      return latest;
    }
    const dbFile = join(workDir, "snapshot.sqlite");
    if (latest) {
      progress({
        phase: "download",
        recordsApplied: 0,
        sequenceNumber: latest.sequenceNumber,
      });
      log.info("downloading latest snapshot", { ...fields, key: latest.key });
      await fetchSnapshot(o.store, latest, dbFile, o.signal);
    }
    const db = new DatabaseSync(dbFile);
    let closed = false;
    const close = () => {
      if (!closed) db.close();
      closed = true;
    };
    try {
      // The working copy is published only after it is closed and copied: it needs no journal
      // on disk and no fsync; a crash discards the whole working directory.
      db.exec(
        "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY",
      );
      let meta = readSnapshotMetadata(db);
      if (latest && !meta) {
        throw new SnapshotIntegrityError(
          latest.key,
          `Cannot build on snapshot as it has no metadata: current value is "${latest.key}"`,
        );
      }
      if (!meta) {
        // Must precede the first table: lets `compact` free pages without VACUUM.
        db.exec("PRAGMA auto_vacuum = INCREMENTAL");
        const parents = o.parents ?? [];
        if (parents.length > 0 && o.generator.onParents) {
          await this.#seedFromParents(db, workDir, parents);
        } else {
          const start = assertSequenceNumber(
            String(await o.generator.bootstrap?.(db) ?? BOOTSTRAP_SEQUENCE),
          );
          initSnapshotMetadata(db, {
            stream: o.stream,
            shardId: o.shardId,
            sequenceNumber: start,
          });
        }
        meta = readSnapshotMetadata(db)!;
      }
      if (meta.formatVersion > FORMAT_VERSION) {
        throw new SnapshotIntegrityError(
          latest?.key ?? "",
          `Cannot build on snapshot as it was written by a newer format: current value is ${meta.formatVersion}`,
        );
      }
      await inTransaction(
        db,
        async () => await o.generator.onStart?.(db),
      );

      const applier = new PageApplier(
        db,
        o.generator,
        o.skipBadRecords
          ? (record, shardId, error) =>
            log.warn("skipped a record the generator failed on", {
              shard: shardId,
              sequenceNumber: record.sequenceNumber,
              subSequenceNumber: record.subSequenceNumber,
              partitionKey: record.partitionKey,
              error: (error as Error)?.message ?? String(error),
            })
          : undefined,
      );
      let sequenceNumber = meta.sequenceNumber;
      let applied = 0;
      let childShards: ChildShard[] | undefined;
      log.info("catching up", { ...fields, after: sequenceNumber });
      for await (
        const page of (o.source ?? readShard)(o.kinesis, {
          hashKeyRange: o.hashKeyRange,
          stream: o.stream,
          shardId: o.shardId,
          after: sequenceNumber,
          doneLagMs: o.doneLagMs ?? 0,
          limit: o.limit,
          prefetch: o.prefetch,
          retry: o.retry,
          signal: o.signal,
          logger: log,
        })
      ) {
        if (page.records.length > 0) {
          const last = page.records[page.records.length - 1].sequenceNumber;
          applied += await applier.apply(page, last);
          sequenceNumber = last;
        }
        if (page.closed) {
          childShards = page.childShards;
          applier.markFinal(childShards);
        }
        progress({
          phase: "catch-up",
          recordsApplied: applied,
          sequenceNumber,
          millisBehindLatest: page.millisBehindLatest,
        });
        log.debug("applied batch", {
          ...fields,
          records: page.records.length,
          millisBehindLatest: page.millisBehindLatest,
        });
      }
      const final = childShards !== undefined;
      if (latest && applied === 0 && !final) {
        log.info("no new records; the latest snapshot stands", {
          ...fields,
          key: latest.key,
        });
        return latest;
      }

      if (o.compact ?? true) {
        // Deno allows ATTACH, and so VACUUM and VACUUM INTO, only with every permission
        // granted. Snapshots are created with auto_vacuum = INCREMENTAL instead, so free pages
        // can be handed back without ATTACH; zstd then absorbs the slack in partly-used pages.
        progress({ phase: "compact", recordsApplied: applied, sequenceNumber });
        db.exec("PRAGMA incremental_vacuum");
      }
      db.exec("PRAGMA optimize");
      close();
      const plainFile = dbFile;

      const encoding = o.encoding ?? "zstd";
      const storedFile = join(workDir, "upload.bin");
      const encoded = await encodeFile(plainFile, storedFile, encoding);
      const parts = {
        stream: o.stream,
        shardId: o.shardId,
        sequenceNumber,
        final,
        encoding,
      };
      const key = snapshotKey(parts);
      progress({
        phase: "upload",
        recordsApplied: applied,
        sequenceNumber,
        bytesUploaded: 0,
      });
      log.info("publishing snapshot", {
        ...fields,
        key,
        records: applied,
        rawBytes: encoded.rawSize,
        storedBytes: encoded.storedSize,
      });
      try {
        await o.store.put(key, storedFile, {
          metadata: {
            sha256: encoded.sha256,
            "raw-size": String(encoded.rawSize),
            "format-version": String(FORMAT_VERSION),
          },
          ifNoneMatch: true,
          signal: o.signal,
          onProgress: (bytes) =>
            progress({
              phase: "upload",
              recordsApplied: applied,
              sequenceNumber,
              bytesUploaded: bytes,
            }),
        });
      } catch (error) {
        if (!(error instanceof ObjectExistsError)) throw error;
        // Another producer published the same position first: its snapshot stands.
        log.warn(
          "another producer published this snapshot first; keeping theirs",
          {
            ...fields,
            key,
          },
        );
      }
      const localFile = localSnapshotFile(o.localPath, parts);
      await Deno.mkdir(dirname(localFile), { recursive: true });
      await Deno.rename(plainFile, localFile);
      progress({ phase: "done", recordsApplied: applied, sequenceNumber });
      return {
        ...parts,
        key,
        localFile,
        size: encoded.storedSize,
        lastModified: new Date(),
      };
    } finally {
      close();
    }
  }

  async #seedFromParents(db: DatabaseSync, workDir: string, parents: Snapshot[]): Promise<void> {
    const o = this.#options;
    const opened: ParentSnapshot[] = [];
    try {
      for (const parent of parents) {
        const file = join(workDir, `parent-${parent.shardId}.sqlite`);
        this.#logger.info("downloading parent's final snapshot", {
          shard: o.shardId,
          parent: parent.shardId,
          key: parent.key,
        });
        const metadata = await fetchSnapshot(o.store, parent, file, o.signal);
        opened.push({
          shardId: parent.shardId,
          db: new DatabaseSync(file, { readOnly: true }),
          metadata,
        });
      }
      const hashKeyRange = o.hashKeyRange ??
        await lookUpHashKeyRange(o.kinesis, o.stream, o.shardId);
      await inTransaction(db, async () => {
        initSnapshotMetadata(db, {
          stream: o.stream,
          shardId: o.shardId,
          sequenceNumber: BOOTSTRAP_SEQUENCE,
          parentShards: parents.map((p) => p.shardId),
        });
        await o.generator.onParents!(db, { shardId: o.shardId, hashKeyRange, parents: opened });
      });
    } finally {
      for (const p of opened) p.db.close();
    }
  }
}

async function lookUpHashKeyRange(
  client: AwsClient,
  stream: string,
  shardId: string,
): Promise<HashKeyRange> {
  const shard = (await listStreamShards(client, stream)).find((s) => s.shardId === shardId);
  if (!shard) {
    throw new InvalidArgumentError(
      `Cannot seed shard from its parents as the stream has no such shard: current value is "${shardId}"`,
    );
  }
  return shard.hashKeyRange;
}
