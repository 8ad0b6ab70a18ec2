/**
 * One producer run over one shard, phase by phase, in its own working directory: find the
 * latest restorable point, open it (from the local cache, or restored from the store, or new),
 * catch up, publish a delta or a full snapshot, keep the result as the local cache, collect
 * superseded chains. {@linkcode SnapshotRun.follow} keeps reading and publishes every interval.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { encodeFile } from "./_codec.ts";
import { encodeDelta } from "./_delta.ts";
import { planRestore, restore, type RestorePlan } from "./_restore.ts";
import { listShardSnapshots } from "./_snapshot_io.ts";
import {
  type ChainCost,
  chainCost,
  type ChainPolicy,
  fullDue,
  resolveChainPolicy,
  supersededObjects,
} from "./chain.ts";
import { InvalidArgumentError, RetentionGapError } from "./errors.ts";
import { MIN_RETENTION_HOURS, streamRetentionHours } from "./kinesis/retention.ts";
import { findShard } from "./kinesis/list_shards.ts";
import { readShard } from "./kinesis/shard_reader.ts";
import { type Logger, silentLogger } from "./logger.ts";
import {
  forgetShard,
  recordPage,
  recordPublished,
  recordTransfer,
  RunTrace,
} from "./_telemetry.ts";
import { FORMAT_VERSION, readSnapshotMetadata } from "./metadata.ts";
import type { ShardPage } from "./records.ts";
import {
  BOOTSTRAP_SEQUENCE,
  localSnapshotFile,
  type Snapshot,
  snapshotKey,
  type SnapshotKeyParts,
} from "./snapshot.ts";
import { type Changes, type SeedFromParents, SnapshotDb } from "./snapshot_db.ts";
import type { ShardSnapshotterOptions, SnapshotProgress } from "./snapshotter.ts";
import { ObjectExistsError } from "./store/snapshot_store.ts";
import { fetchSnapshot } from "./_snapshot_io.ts";

const HOUR_MS = 3_600_000;

/** What the local cache of a published point records beside the database file. */
interface CacheRecord {
  /** The store the point was published to (two stores may share a local dir). */
  store: string;
  stream: string;
  shardId: string;
  sequenceNumber: string;
  size: number;
  mtimeMs: number;
  /** When the producer last read the shard to its tip after this point (ms since epoch): no
   * record after the point had arrived by then. */
  caughtUpAt?: number;
}

/** One run of a snapshotter over one shard. */
export class SnapshotRun {
  #o: ShardSnapshotterOptions;
  #dir: string;
  #signal?: AbortSignal;
  #log: Logger;
  #fields: { stream: string; shard: string };
  #policy: Required<ChainPolicy>;
  /** The shard's objects as last listed. */
  #objects: Snapshot[] = [];
  /** The last published point, and what restoring it costs a consumer. */
  #point?: Snapshot;
  #chain?: ChainCost;
  #applied = 0;
  #sincePoint = 0;
  #trace?: RunTrace;
  /** When this run (or, through the local copy, an earlier one) last read the shard to its
   * tip after the current point. */
  #caughtUpAt?: number;
  /** Whether the delta just published applies to a point no chain in the store reaches now. */
  #orphaned = false;

  constructor(options: ShardSnapshotterOptions, workDir: string, signal?: AbortSignal) {
    this.#o = options;
    this.#dir = workDir;
    this.#signal = signal;
    this.#log = options.logger ?? silentLogger;
    this.#fields = { stream: options.stream, shard: options.shardId };
    this.#policy = resolveChainPolicy(options.chain);
  }

  /** Catches up once and publishes; returns the latest point afterwards. */
  async run(): Promise<Snapshot> {
    return await this.#traced("streambolt.snapshot", () => this.#runOnce());
  }

  async #runOnce(): Promise<Snapshot> {
    const base = await this.#findBase();
    if (base?.final) return this.#alreadyFinal(base);
    const db = await this.#open(base);
    let published: Snapshot;
    try {
      const pages = this.#pages(db.sequenceNumber, this.#signal, false);
      await this.#phase("catch_up", () => this.#catchUp(db, pages));
      if (base && this.#sincePoint === 0 && !db.final) return await this.#standing(db, base);
      published = await this.#publish(db);
    } finally {
      db.close();
    }
    const kept = await this.#keep(db, published);
    await this.#collect();
    return kept;
  }

  /**
   * Reads on until `stop` aborts or the shard closes, publishing every `publishEveryMs` when
   * records were applied; on stop, publishes what was applied since the last point.
   *
   * @returns The latest point when it stopped.
   */
  async follow(publishEveryMs: number, stop: AbortSignal): Promise<Snapshot | undefined> {
    let base: RestorePlan | undefined;
    const opened = await this.#traced("streambolt.follow", async () => {
      base = await this.#findBase();
      return base?.final ? this.#alreadyFinal(base) : await this.#open(base);
    });
    if (!(opened instanceof SnapshotDb)) return opened;
    const db = opened;
    let isPoint = false;
    try {
      const reading = AbortSignal.any([stop, ...(this.#signal ? [this.#signal] : [])]);
      let due = Date.now() + publishEveryMs;
      const pages = this.#pages(db.sequenceNumber, reading, true);
      await this.#catchUp(db, pages, async () => {
        if (Date.now() < due && !db.final) return;
        if (this.#sincePoint > 0 || db.final) await this.#publishPoint(db);
        due = Date.now() + publishEveryMs;
      }).catch((error) => {
        // Stopping cancels the read in flight; anything else is a failure.
        const stopped = stop.aborted && !this.#signal?.aborted &&
          (error === stop.reason || (error as Error)?.name === "AbortError");
        if (!stopped) throw error;
      });
      if (this.#sincePoint > 0) await this.#publishPoint(db);
      // Nothing published: the database is the base point only if `onStart` (or a recorded
      // gap) changed nothing; else the next run restores the point and publishes the change.
      isPoint = this.#point !== base?.target || unchanged(db);
    } finally {
      db.close();
    }
    if (db.final) forgetShard(this.#o);
    if (!this.#point) return undefined;
    return isPoint ? await this.#keep(db, this.#point) : this.#point;
  }

  /** Runs `work` as a traced run: a span, child spans for its phases, its duration. */
  async #traced<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.#trace = new RunTrace(name, this.#o);
    let failure: unknown;
    try {
      return await work();
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      this.#trace.end(failure);
      this.#trace = undefined;
    }
  }

  /** Runs one phase inside a child span of the current run, if one is traced. */
  #phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#trace ? this.#trace.phase(name, work) : work();
  }

  /** No new records: the latest point stands, and stays the local cache if nothing changed. */
  async #standing(db: SnapshotDb, base: RestorePlan): Promise<Snapshot> {
    this.#log.info("no new records; the latest snapshot stands", {
      ...this.#fields,
      key: base.target!.key,
    });
    const isPoint = unchanged(db);
    db.close();
    return isPoint ? await this.#keep(db, base.target!) : base.target!;
  }

  #alreadyFinal(base: RestorePlan): Snapshot {
    this.#log.info("shard is closed and its final snapshot exists", {
      ...this.#fields,
      key: base.target!.key,
    });
    return base.target!;
  }

  #progress(phase: SnapshotProgress["phase"], extra: Partial<SnapshotProgress> = {}): void {
    this.#o.onProgress?.({
      shardId: this.#o.shardId,
      phase,
      recordsApplied: this.#applied,
      sequenceNumber: this.#point?.sequenceNumber ?? "0",
      ...extra,
    });
  }

  /** Phase 1: the shard's objects, and how to restore its newest point. */
  async #findBase(): Promise<RestorePlan | undefined> {
    const o = this.#o;
    this.#objects = await this.#phase(
      "find_base",
      () => listShardSnapshots(o.store, o.stream, o.shardId, o.localPath, this.#signal),
    );
    const plan = planRestore(this.#objects);
    if (plan && plan.unreachable.length > 0) {
      this.#log.warn(
        "newer objects are not restorable (a gap in their chain); building on the newest point that is",
        {
          ...this.#fields,
          point: plan.sequenceNumber,
          unreachable: plan.unreachable.map((s) => s.key).join(","),
        },
      );
    }
    this.#point = plan?.target;
    this.#chain = plan && chainCost(plan.path);
    return plan;
  }

  /** Phase 2: the working database: the cached or restored base, or a new one. */
  async #open(base: RestorePlan | undefined): Promise<SnapshotDb> {
    const o = this.#o;
    const file = join(this.#dir, "snapshot.sqlite");
    if (base) await this.#phase("download", () => this.#openBase(base, file));
    const seed = !base && o.parents?.length && o.generator.onParents
      ? await this.#downloadParents(o.parents)
      : undefined;
    const db = await this.#openDb(file, base, seed);
    try {
      if (base) await this.#checkGap(db, base);
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * A base whose last record arrived longer ago than the stream's retention may be followed by
   * records already trimmed: fail, naming the shard, unless told to accept the gap (then it is
   * logged and recorded in the snapshot's metadata).
   */
  async #checkGap(db: SnapshotDb, base: RestorePlan): Promise<void> {
    const o = this.#o;
    const meta = db.metadata();
    // Every record after the point arrived after the later of its last record and the last
    // time a run read the shard to its tip (an idle shard has no gap).
    const known = [meta.lastArrivalAt, base.target?.lastModified?.toISOString()]
      .find((t) => t !== undefined);
    const last = this.#caughtUpAt !== undefined && (!known || this.#caughtUpAt > Date.parse(known))
      ? new Date(this.#caughtUpAt).toISOString()
      : known;
    if (meta.sequenceNumber === BOOTSTRAP_SEQUENCE || !last) return;
    const age = Date.now() - Date.parse(last);
    if (age < MIN_RETENTION_HOURS * HOUR_MS) return;
    const retentionHours = await streamRetentionHours(o.kinesis, o.stream, this.#signal);
    if (age < retentionHours * HOUR_MS) return;
    if (!o.acceptGap) throw new RetentionGapError(o.shardId, last, retentionHours);
    this.#log.warn(
      "continuing past a possible gap: the snapshot's last record is older than the stream's retention",
      {
        ...this.#fields,
        lastArrivalAt: last,
        retentionHours,
      },
    );
    await db.recordGap({
      after: meta.sequenceNumber,
      lastArrivalAt: last,
      retentionHours,
      acceptedAt: new Date().toISOString(),
    });
  }

  #openDb(
    file: string,
    base: RestorePlan | undefined,
    seed: SeedFromParents | undefined,
  ): Promise<SnapshotDb> {
    const o = this.#o;
    return SnapshotDb.open(file, {
      stream: o.stream,
      shardId: o.shardId,
      generator: o.generator,
      baseKey: base?.target?.key,
      seed,
      trackChanges: !o.full,
      maxDeltaRecords: o.maxDeltaRecords,
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

  async #openBase(base: RestorePlan, file: string): Promise<void> {
    if (await this.#takeCached(base.sequenceNumber, file)) {
      this.#log.info("using the local copy of the latest point", {
        ...this.#fields,
        point: base.sequenceNumber,
      });
      return;
    }
    this.#progress("download", { sequenceNumber: base.sequenceNumber });
    this.#log.info("restoring latest point", {
      ...this.#fields,
      point: base.sequenceNumber,
      objects: base.path.length,
    });
    await restore(this.#o.store, base, file, this.#signal);
  }

  /** The local cache, when it holds exactly `sequenceNumber` of this shard: moved to `file`. */
  async #takeCached(sequenceNumber: string, file: string): Promise<boolean> {
    const o = this.#o;
    const cached = localSnapshotFile(o.localPath, { ...this.#parts(sequenceNumber), final: false });
    let record: CacheRecord;
    let info: Deno.FileInfo;
    try {
      record = JSON.parse(await Deno.readTextFile(`${cached}.json`));
      info = await Deno.stat(cached);
    } catch {
      return false;
    }
    const matches = record.store === o.store.url && record.stream === o.stream &&
      record.shardId === o.shardId &&
      record.sequenceNumber === sequenceNumber && record.size === info.size &&
      record.mtimeMs === info.mtime?.getTime() && metadataMatches(cached, record);
    if (!matches) return false;
    await Deno.rename(cached, file);
    await Deno.remove(`${cached}.json`).catch(() => {});
    this.#caughtUpAt = record.caughtUpAt;
    return true;
  }

  async #downloadParents(parents: Snapshot[]): Promise<SeedFromParents> {
    const o = this.#o;
    const files = [];
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
      (await findShard(o.kinesis, o.stream, o.shardId, { signal: this.#signal, retry: o.retry }))
        ?.hashKeyRange;
    if (!hashKeyRange) {
      throw new InvalidArgumentError(
        `Cannot seed shard from its parents as the stream has no such shard: current value is "${o.shardId}"`,
      );
    }
    return { parents: files, hashKeyRange };
  }

  #pages(after: string, signal: AbortSignal | undefined, follow: boolean) {
    const o = this.#o;
    return (o.source ?? readShard)(o.kinesis, {
      hashKeyRange: o.hashKeyRange,
      stream: o.stream,
      shardId: o.shardId,
      after,
      doneLagMs: follow ? undefined : o.doneLagMs ?? 0,
      pollIntervalMs: o.pollIntervalMs,
      limit: o.limit,
      prefetch: o.prefetch,
      retry: o.retry,
      signal,
      logger: this.#log,
    });
  }

  /** Phase 3: apply pages until the source ends (caught up, closed, or stopped). */
  async #catchUp(
    db: SnapshotDb,
    pages: AsyncIterable<ShardPage>,
    afterPage?: () => Promise<void>,
  ): Promise<void> {
    this.#log.info("catching up", { ...this.#fields, after: db.sequenceNumber });
    for await (const page of pages) {
      const applied = await db.applyPage(page);
      recordPage(this.#o, applied, page.records.length - applied, page.millisBehindLatest);
      if (!page.fullPage && page.millisBehindLatest === 0) this.#caughtUpAt = Date.now();
      this.#applied += applied;
      this.#sincePoint += page.records.length;
      this.#progress("catch-up", {
        sequenceNumber: db.sequenceNumber,
        millisBehindLatest: page.millisBehindLatest,
      });
      this.#log.debug("applied batch", {
        ...this.#fields,
        records: page.records.length,
        millisBehindLatest: page.millisBehindLatest,
      });
      await afterPage?.();
      if (page.closed) return;
    }
  }

  /** Publishes the current point and starts a new one (following). */
  async #publishPoint(db: SnapshotDb): Promise<void> {
    this.#point = await this.#traced("streambolt.publish", () => this.#publish(db));
    db.restartTracking();
    await this.#collect();
  }

  /**
   * Phase 4: publish the point reached: a delta when the changes were recorded, and a full
   * snapshot as well when the chain has grown past the policy (or the shard is closed, or no
   * delta can be taken).
   */
  async #publish(db: SnapshotDb): Promise<Snapshot> {
    const reason = this.#fullReason(db);
    let published: Snapshot | undefined;
    if (reason === undefined) {
      published = await this.#publishDelta(db, db.takeChanges()!);
      const chain = {
        ...this.#chain!,
        deltas: this.#chain!.deltas + 1,
        deltaBytes: this.#chain!.deltaBytes + (published.size ?? 0),
      };
      this.#chain = chain;
      if (!this.#orphaned && !fullDue(chain, this.#policy)) return this.#published(published);
      if (this.#orphaned) {
        this.#log.warn(
          "another producer collected the chain this delta applies to; publishing a full snapshot too",
          { ...this.#fields, key: published.key },
        );
      } else {
        this.#log.info("the chain has grown past its policy; publishing a full snapshot too", {
          ...this.#fields,
          deltas: chain.deltas,
          deltaBytes: chain.deltaBytes,
          fullBytes: chain.fullBytes,
        });
      }
    } else if (this.#point && !this.#o.full) {
      this.#log.info(`publishing a full snapshot: ${reason}`, this.#fields);
    }
    const full = await this.#publishFull(db);
    this.#chain = { fullBytes: full.size ?? 0, deltas: 0, deltaBytes: 0 };
    return this.#published(full);
  }

  #published(point: Snapshot): Snapshot {
    this.#sincePoint = 0;
    recordPublished(this.#o);
    this.#trace?.set("streambolt.snapshot.kind", point.kind);
    this.#progress("done", { sequenceNumber: point.sequenceNumber });
    return point;
  }

  /** Why this point must be published whole, if it must. */
  #fullReason(db: SnapshotDb): string | undefined {
    if (this.#o.full) return "a full snapshot was asked for";
    if (!this.#point || !this.#chain) return "there is no earlier point";
    if (db.final) return "the shard is closed";
    return db.deltaBlocker();
  }

  async #publishDelta(db: SnapshotDb, changes: Changes): Promise<Snapshot> {
    const o = this.#o;
    const parts: SnapshotKeyParts = {
      ...this.#parts(db.sequenceNumber),
      final: false,
      encoding: o.encoding ?? "zstd",
      kind: "delta",
      baseSequenceNumber: this.#point!.sequenceNumber,
    };
    const encoded = await this.#phase("encode", () =>
      Promise.resolve(encodeDelta({
        header: {
          stream: o.stream,
          shardId: o.shardId,
          baseSequenceNumber: parts.baseSequenceNumber!,
          sequenceNumber: parts.sequenceNumber,
          schema: changes.schema,
          createdAt: new Date().toISOString(),
        },
        patchset: changes.patchset,
      }, parts.encoding)));
    const file = join(this.#dir, "delta.bin");
    await Deno.writeFile(file, encoded.bytes);
    const key = snapshotKey(parts);
    await this.#put(
      key,
      file,
      {
        sha256: encoded.sha256,
        "raw-size": String(encoded.rawSize),
        kind: "delta",
        base: parts.baseSequenceNumber!,
        ...pointMetadata(db),
      },
      parts.sequenceNumber,
      encoded.rawSize,
      encoded.bytes.length,
    );
    const now = await this.#noticeForks(parts.baseSequenceNumber!, key);
    // A racing producer may have deleted the chain of the base since this run listed it.
    this.#orphaned = !planRestore(now, { target: parts });
    return this.#snapshot(parts, key, encoded.bytes.length);
  }

  async #publishFull(db: SnapshotDb): Promise<Snapshot> {
    const o = this.#o;
    const parts: SnapshotKeyParts = {
      ...this.#parts(db.sequenceNumber),
      final: db.final,
      encoding: o.encoding ?? "zstd",
      kind: "full",
    };
    if (o.compact !== false) {
      this.#progress("compact", { sequenceNumber: db.sequenceNumber });
      await this.#phase("compact", () => Promise.resolve(db.compact()));
    }
    db.optimize();
    const stored = join(this.#dir, "upload.bin");
    const encoded = await this.#phase("encode", () => encodeFile(db.file, stored, parts.encoding));
    const key = snapshotKey(parts);
    await this.#put(
      key,
      stored,
      {
        sha256: encoded.sha256,
        "raw-size": String(encoded.rawSize),
        ...pointMetadata(db),
      },
      parts.sequenceNumber,
      encoded.rawSize,
      encoded.storedSize,
    );
    await Deno.remove(stored).catch(() => {});
    return this.#snapshot(parts, key, encoded.storedSize);
  }

  #parts(sequenceNumber: string): Pick<SnapshotKeyParts, "stream" | "shardId" | "sequenceNumber"> {
    return { stream: this.#o.stream, shardId: this.#o.shardId, sequenceNumber };
  }

  /** The object just published, now one of the shard's objects. */
  #snapshot(parts: SnapshotKeyParts, key: string, size: number): Snapshot {
    const snapshot: Snapshot = {
      ...parts,
      kind: parts.kind ?? "full",
      key,
      localFile: localSnapshotFile(this.#o.localPath, { ...parts, final: false }),
      size,
      lastModified: new Date(),
    };
    this.#objects.push(snapshot);
    return snapshot;
  }

  async #put(
    key: string,
    file: string,
    metadata: Record<string, string>,
    sequenceNumber: string,
    rawBytes: number,
    storedBytes: number,
  ): Promise<void> {
    this.#log.info("publishing snapshot", {
      ...this.#fields,
      key,
      records: this.#applied,
      rawBytes,
      storedBytes,
    });
    const progress = (bytesUploaded: number) =>
      this.#progress("upload", { sequenceNumber, bytesUploaded });
    progress(0);
    try {
      await this.#phase("upload", () =>
        this.#o.store.put(key, file, {
          metadata: { ...metadata, "format-version": String(FORMAT_VERSION) },
          ifNoneMatch: true,
          signal: this.#signal,
          onProgress: progress,
        }));
      recordTransfer("uploaded", this.#o, metadata.kind ?? "full", storedBytes);
    } catch (error) {
      if (!(error instanceof ObjectExistsError)) throw error;
      // Another producer published the same position first: its snapshot stands.
      this.#log.warn("another producer published this snapshot first; keeping theirs", {
        ...this.#fields,
        key,
      });
    }
  }

  /** Two producers that built on the same point publish two deltas of it: say so.
   * @returns The shard's objects, listed after the delta was published. */
  async #noticeForks(base: string, key: string): Promise<Snapshot[]> {
    const o = this.#o;
    const now = await listShardSnapshots(o.store, o.stream, o.shardId, "", this.#signal);
    // The listing is the shard as it stands (ours is added back with its size by the caller):
    // a follower's view never grows past what the store holds.
    this.#objects = now.filter((s) => s.key !== key);
    const siblings = now.filter((s) =>
      s.kind === "delta" && s.baseSequenceNumber === base && s.key !== key
    );
    if (siblings.length === 0) return now;
    this.#log.warn(
      "another producer published a delta of the same point; both are valid, consumers take the newest",
      {
        ...this.#fields,
        key,
        others: siblings.map((s) => s.key).join(","),
      },
    );
    return now;
  }

  /** Phase 5: keep the database of the point published as the local cache. */
  async #keep(db: SnapshotDb, point: Snapshot): Promise<Snapshot> {
    const target = localSnapshotFile(this.#o.localPath, { ...point, final: false });
    await Deno.mkdir(dirname(target), { recursive: true });
    // Durable before it is named: the next run builds on it without downloading.
    const handle = await Deno.open(db.file, { read: true, write: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
    await removeOtherCaches(dirname(target), target);
    await Deno.rename(db.file, target);
    const info = await Deno.stat(target);
    const record: CacheRecord = {
      store: this.#o.store.url,
      ...this.#parts(point.sequenceNumber),
      size: info.size,
      mtimeMs: info.mtime?.getTime() ?? 0,
      caughtUpAt: this.#caughtUpAt,
    };
    await Deno.writeTextFile(`${target}.json`, JSON.stringify(record));
    return { ...point, localFile: target };
  }

  /** Phase 6: delete the chains older than the newest `retainChains` full snapshots. */
  async #collect(): Promise<void> {
    const doomed = supersededObjects(this.#objects, this.#o.retainChains ?? 2);
    if (doomed.length === 0) return;
    try {
      await this.#o.store.delete(doomed.map((s) => s.key), { signal: this.#signal });
      this.#objects = this.#objects.filter((s) => !doomed.includes(s));
      this.#log.info("deleted superseded chains", { ...this.#fields, objects: doomed.length });
    } catch (error) {
      this.#log.warn("could not delete superseded chains; they stay until gc", {
        ...this.#fields,
        error: (error as Error)?.message ?? String(error),
      });
    }
  }
}

/**
 * What a stored object says about its point besides the key (S3 user metadata, or the file
 * store's sidecar), so `status` can read it with a HEAD instead of a download.
 */
function pointMetadata(db: SnapshotDb): Record<string, string> {
  const meta = db.metadata();
  return {
    "records-applied": String(meta.recordsApplied),
    "records-skipped": String(meta.recordsSkipped),
    ...(meta.lastArrivalAt ? { "last-arrival-at": meta.lastArrivalAt } : {}),
    ...(meta.acceptedGaps.length > 0 ? { "accepted-gaps": String(meta.acceptedGaps.length) } : {}),
  };
}

/** Whether nothing changed the database since its last point (changes not recorded count as
 * changed): only then may it stand as that point's local copy. */
function unchanged(db: SnapshotDb): boolean {
  return db.takeChanges()?.patchset.length === 0;
}

function metadataMatches(file: string, record: CacheRecord): boolean {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file, { readOnly: true });
    const meta = readSnapshotMetadata(db);
    return meta?.stream === record.stream && meta.shardId === record.shardId &&
      meta.sequenceNumber === record.sequenceNumber && !meta.final;
  } catch {
    return false;
  } finally {
    db?.close();
  }
}

/** Removes the cached points in `dir` other than `keep` (one cache per shard). */
async function removeOtherCaches(dir: string, keep: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (path === keep || path === `${keep}.json`) continue;
    if (/^\d+(\.final)?\.sqlite(\.json)?$/.test(entry.name)) {
      await Deno.remove(path).catch(() => {});
    }
  }
}
