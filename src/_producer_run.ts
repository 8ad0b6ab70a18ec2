/**
 * One producer run over one shard, phase by phase, in its own working directory: find the
 * latest restorable point, open it (from the local copy, or restored from the store, or new),
 * catch up, publish a delta or a full snapshot (`_publish.ts`), keep the result as the local
 * copy (`_local_copy.ts`), delete what the retention no longer keeps (`retention.ts`). {@linkcode SnapshotRun.follow} keeps
 * reading and publishes every interval. Each phase hands its result to the next.
 *
 * @module
 */
import { join } from "node:path";
import {
  isStoredPublication,
  keepLocalCopy,
  standsAsPoint,
  startFlush,
  takeLocalCopy,
  type TakenCopy,
} from "./_local_copy.ts";
import { publish, type PublishContext, type ReportProgress, type ShardState } from "./_publish.ts";
import { giveUpAfterVanished, planRestore, restore, type RestorePlan } from "./_restore.ts";
import { fetchSnapshot, listShardSnapshots } from "./_fetch.ts";
import { forgetShard, recordPage, RunTrace } from "./_telemetry.ts";
import { chainCost, type ChainPolicy, resolveChainPolicy } from "./chain.ts";
import { InvalidArgumentError, RetentionGapError, SnapshotVanishedError } from "./errors.ts";
import { findShard } from "./kinesis/list_shards.ts";
import { MIN_RETENTION_HOURS, streamRetentionHours } from "./kinesis/retention.ts";
import { readShard } from "./kinesis/shard_reader.ts";
import { planShardRetention, resolveRetention } from "./retention.ts";
import { type Logger, silentLogger } from "./logger.ts";
import type { ShardPage } from "./records.ts";
import { BOOTSTRAP_SEQUENCE, type Snapshot } from "./snapshot_key.ts";
import { type SeedFromParents, SnapshotDb } from "./database.ts";
import type { ShardSnapshotterOptions } from "./shard_snapshotter.ts";

const HOUR_MS = 3_600_000;

/** The latest restorable point found, and the shard as listed. */
interface Base {
  /** How to restore the latest point; none when the shard has no point yet. */
  plan?: RestorePlan;
  /** The shard's objects, its latest point, and what restoring that costs. */
  state: ShardState;
}

/** The working database, opened on the base point. */
interface Opened {
  db: SnapshotDb;
  /** When a run last read the shard to its tip after the base point (from the local copy). */
  caughtUpAt?: number;
}

/** What reading the shard has done so far. */
interface Tally {
  /** Records read since the latest point. */
  read: number;
  /** Records applied by this run. */
  applied: number;
  /** When this run (or, through the local copy, an earlier one) last read the shard to its tip
   * after the latest point. */
  caughtUpAt?: number;
}

/** One run of a snapshotter over one shard. */
export class SnapshotRun {
  readonly #o: ShardSnapshotterOptions;
  readonly #dir: string;
  readonly #signal?: AbortSignal;
  readonly #log: Logger;
  readonly #fields: { stream: string; shard: string };
  readonly #policy: Required<ChainPolicy>;

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
    return await this.#traced("streambolt.snapshot", (trace) => this.#runOnce(trace));
  }

  async #runOnce(trace: RunTrace): Promise<Snapshot> {
    const opened = await this.#openLatest(trace);
    if (!("db" in opened)) return opened;
    const { base, db, caughtUpAt } = opened;
    let state: ShardState;
    let tally: Tally;
    try {
      const pages = this.#pages(db.sequenceNumber, this.#signal, false);
      const start = { read: 0, applied: 0, caughtUpAt };
      tally = await trace.phase("catch_up", () => this.#catchUp(db, pages, start));
      if (base.plan && tally.read === 0 && !db.final) {
        return await this.#standing(db, base.plan, tally);
      }
      // The database holds the point now: its pages start for the disk while the point is
      // built and put, and the local copy's own fsync (after the last write) finds little left.
      const flushing = startFlush(db.file);
      try {
        state = await publish(this.#publishing(tally, trace), db, base.state);
      } finally {
        await flushing;
      }
    } finally {
      db.close();
    }
    // Another producer's point stands: this database is not provably it, so it is not kept
    // (the next run restores the point from the store).
    const kept = state.theirs
      ? state.point!
      : await keepLocalCopy(this.#o, db.file, state.point!, tally.caughtUpAt);
    await this.#collect(state.objects);
    return kept;
  }

  /**
   * Reads on until `stop` aborts or the shard closes, publishing every `publishEveryMs` when
   * records were applied; on stop, publishes what was applied since the last point.
   *
   * @returns The latest point when it stopped.
   */
  async follow(publishEveryMs: number, stop: AbortSignal): Promise<Snapshot | undefined> {
    const opened = await this.#traced("streambolt.follow", (trace) => this.#openLatest(trace));
    if (!("db" in opened)) return opened;
    const { base, db } = opened;
    let state = base.state;
    let tally: Tally = { read: 0, applied: 0, caughtUpAt: opened.caughtUpAt };
    let isPoint = false;
    try {
      const reading = AbortSignal.any([stop, ...(this.#signal ? [this.#signal] : [])]);
      let due = Date.now() + publishEveryMs;
      const pages = this.#pages(db.sequenceNumber, reading, true);
      await this.#catchUp(db, pages, tally, async (read) => {
        tally = read;
        if (Date.now() < due && !db.final) return tally;
        if (tally.read > 0 || db.final) [state, tally] = await this.#publishPoint(db, state, tally);
        due = Date.now() + publishEveryMs;
        return tally;
      }).catch((error) => {
        // Stopping cancels the read in flight; anything else is a failure.
        const stopped = stop.aborted && !this.#signal?.aborted &&
          (error === stop.reason || (error as Error)?.name === "AbortError");
        if (!stopped) throw error;
      });
      if (tally.read > 0) [state, tally] = await this.#publishPoint(db, state, tally);
      // Nothing published: the database is the base point only if `onStart` (or a recorded
      // gap) changed nothing; else the next run restores the point and publishes the change.
      // Nor is it when another producer's point stands at the key this run published to.
      isPoint = !state.theirs && (state.point !== base.state.point || standsAsPoint(db));
    } finally {
      db.close();
    }
    if (db.final) forgetShard(this.#o);
    if (!state.point) return undefined;
    return isPoint
      ? await keepLocalCopy(this.#o, db.file, state.point, tally.caughtUpAt)
      : state.point;
  }

  /** Runs `work` as a traced run: a span, child spans for its phases, its duration. */
  async #traced<T>(name: string, work: (trace: RunTrace) => Promise<T>): Promise<T> {
    const trace = new RunTrace(name, this.#o);
    let failure: unknown;
    try {
      return await work(trace);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      trace.end(failure);
    }
  }

  /** No new records: the latest point stands, and stays the local copy if nothing changed. */
  async #standing(db: SnapshotDb, base: RestorePlan, tally: Tally): Promise<Snapshot> {
    this.#log.info("no new records; the latest snapshot stands", {
      ...this.#fields,
      key: base.target!.key,
    });
    const isPoint = standsAsPoint(db);
    db.close();
    if (!isPoint) return base.target!;
    return await keepLocalCopy(this.#o, db.file, base.target!, tally.caughtUpAt);
  }

  #alreadyFinal(base: RestorePlan): Snapshot {
    this.#log.info("shard is closed and its final snapshot exists", {
      ...this.#fields,
      key: base.target!.key,
    });
    return base.target!;
  }

  /** Progress reports, counting `applied` records applied by this run. */
  #progress(applied: number): ReportProgress {
    return (phase, extra) =>
      this.#o.onProgress?.({ shardId: this.#o.shardId, phase, recordsApplied: applied, ...extra });
  }

  /**
   * Phases 1 and 2: the newest point, opened as the working database; listed again and
   * re-planned when an object of the plan was deleted since the listing (another producer's
   * retention, `gc`), up to `MAX_LISTINGS` (5) listings in a row.
   *
   * @returns The shard's final point when it has one (nothing to do), else the opened base.
   * @throws {SnapshotVanishedError} When every listing planned an object found gone.
   */
  async #openLatest(trace: RunTrace): Promise<Snapshot | Opened & { base: Base }> {
    for (let listings = 1;; listings++) {
      const base = await this.#findBase(trace);
      if (base.plan?.final) return this.#alreadyFinal(base.plan);
      try {
        return { base, ...await this.#open(base.plan, trace) };
      } catch (error) {
        if (!(error instanceof SnapshotVanishedError)) throw error;
        giveUpAfterVanished(error, listings);
        this.#log.warn("snapshot deleted since the shard was listed; listing again", {
          ...this.#fields,
          key: error.key,
          listings,
        });
        await Deno.remove(join(this.#dir, "snapshot.sqlite")).catch(() => {});
      }
    }
  }

  /** Phase 1: the shard's objects, and how to restore its newest point. */
  async #findBase(trace: RunTrace): Promise<Base> {
    const o = this.#o;
    const objects = await trace.phase(
      "find_base",
      () => listShardSnapshots(o.store, o.stream, o.shardId, o.localPath, this.#signal),
    );
    const plan = planRestore(objects);
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
    return { plan, state: { objects, point: plan?.target, chain: plan && chainCost(plan.path) } };
  }

  /** Phase 2: the working database: the local copy or restored base, or a new one. */
  async #open(base: RestorePlan | undefined, trace: RunTrace): Promise<Opened> {
    const o = this.#o;
    const file = join(this.#dir, "snapshot.sqlite");
    const copy = base ? await trace.phase("download", () => this.#openBase(base, file)) : undefined;
    const seed = !base && o.parents?.length && o.generator.onParents
      ? await this.#downloadParents(o.parents)
      : undefined;
    const db = await this.#openDb(file, base, seed);
    try {
      if (base) await this.#checkGap(db, base, copy?.caughtUpAt);
      return { db, caughtUpAt: copy?.caughtUpAt };
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
  async #checkGap(
    db: SnapshotDb,
    base: RestorePlan,
    caughtUpAt: number | undefined,
  ): Promise<void> {
    const o = this.#o;
    const meta = db.metadata();
    // Every record after the point arrived after the later of its last record and the last
    // time a run read the shard to its tip (an idle shard has no gap).
    const known = [meta.lastArrivalAt, base.target?.lastModified?.toISOString()]
      .find((t) => t !== undefined);
    const last = caughtUpAt !== undefined && (!known || caughtUpAt > Date.parse(known))
      ? new Date(caughtUpAt).toISOString()
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

  /** The base point in `file`: the local copy when it holds it, else restored from the store. */
  async #openBase(base: RestorePlan, file: string): Promise<TakenCopy | undefined> {
    let copy = await takeLocalCopy(this.#o, base.sequenceNumber, file);
    if (copy && !await isStoredPublication(this.#o.store, base.target!, file, this.#signal)) {
      this.#log.warn(
        "the local copy is another publication of the latest point (the store lost it, and it was published again); restoring it",
        { ...this.#fields, point: base.sequenceNumber },
      );
      await Deno.remove(file);
      copy = undefined;
    }
    if (copy) {
      this.#log.info("using the local copy of the latest point", {
        ...this.#fields,
        point: base.sequenceNumber,
      });
      return copy;
    }
    this.#progress(0)("download", { sequenceNumber: base.sequenceNumber });
    this.#log.info("restoring latest point", {
      ...this.#fields,
      point: base.sequenceNumber,
      objects: base.path.length,
    });
    await restore(this.#o.store, base, file, this.#signal);
    return undefined;
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

  /**
   * Phase 3: apply pages until the source ends (caught up, closed, or stopped), counting from
   * `start`; `afterPage` sees the count after each page and may start it afresh.
   *
   * @returns The count when the source ended.
   */
  async #catchUp(
    db: SnapshotDb,
    pages: AsyncIterable<ShardPage>,
    start: Tally,
    afterPage?: (tally: Tally) => Promise<Tally>,
  ): Promise<Tally> {
    this.#log.info("catching up", { ...this.#fields, after: db.sequenceNumber });
    let tally = start;
    for await (const page of pages) {
      const applied = await db.applyPage(page);
      recordPage(this.#o, applied, page.records.length - applied, page.millisBehindLatest);
      tally = {
        read: tally.read + page.records.length,
        applied: tally.applied + applied,
        caughtUpAt: !page.fullPage && page.millisBehindLatest === 0 ? Date.now() : tally.caughtUpAt,
      };
      this.#progress(tally.applied)("catch-up", {
        sequenceNumber: db.sequenceNumber,
        millisBehindLatest: page.millisBehindLatest,
      });
      this.#log.debug("applied batch", {
        ...this.#fields,
        records: page.records.length,
        millisBehindLatest: page.millisBehindLatest,
      });
      if (afterPage) tally = await afterPage(tally);
      if (page.closed) return tally;
    }
    return tally;
  }

  /** Phase 4 (following): publishes the current point, starts a new one, collects.
   * @returns The shard afterwards, and the count started afresh. */
  async #publishPoint(
    db: SnapshotDb,
    state: ShardState,
    tally: Tally,
  ): Promise<[ShardState, Tally]> {
    const published = await this.#traced(
      "streambolt.publish",
      (trace) => publish(this.#publishing(tally, trace), db, state),
    );
    db.restartTracking();
    const objects = await this.#collect(published.objects);
    return [{ ...published, objects }, { ...tally, read: 0 }];
  }

  /** What publishing needs from this run. */
  #publishing(tally: Tally, trace: RunTrace): PublishContext {
    return {
      options: this.#o,
      dir: this.#dir,
      signal: this.#signal,
      log: this.#log,
      policy: this.#policy,
      trace,
      progress: this.#progress(tally.applied),
      applied: tally.applied,
    };
  }

  /**
   * Phase 6: delete what the retention no longer keeps (older points, and the objects only
   * they need).
   *
   * @returns The shard's objects that remain.
   */
  async #collect(objects: Snapshot[]): Promise<Snapshot[]> {
    const policy = resolveRetention(this.#o.retention, "snapshot");
    const { doomed } = planShardRetention(objects, policy, Date.now());
    if (doomed.length === 0) return objects;
    try {
      await this.#o.store.delete(doomed.map((s) => s.key), { signal: this.#signal });
      this.#log.info("deleted points older than the retention", {
        ...this.#fields,
        objects: doomed.length,
      });
      return objects.filter((s) => !doomed.includes(s));
    } catch (error) {
      this.#log.warn("could not delete points older than the retention; they stay until gc", {
        ...this.#fields,
        error: (error as Error)?.message ?? String(error),
      });
      return objects;
    }
  }
}
