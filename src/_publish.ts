/**
 * Publishing a point a producer reached: a delta on the latest point when its changes were
 * recorded; a full snapshot when the chain has grown past its policy, with the delta beside it
 * only when that saves consumers enough (or whole when no delta can be taken); each put only if
 * no object has the key yet, and a fork (another producer's delta of the same point) said out
 * loud.
 *
 * @module
 */
import { join } from "node:path";
import { encodeFile } from "./_codec.ts";
import { encodeDelta } from "./_delta.ts";
import { planRestore } from "./restore_plan.ts";
import { listShardSnapshots } from "./_fetch.ts";
import { recordPublished, recordTransfer, type RunTrace } from "./_telemetry.ts";
import { type ChainCost, type ChainPolicy, deltaBesideFull, fullDue } from "./chain.ts";
import type { Logger } from "./logger.ts";
import { FORMAT_VERSION } from "./metadata.ts";
import {
  localSnapshotFile,
  type Snapshot,
  snapshotKey,
  type SnapshotKeyParts,
} from "./snapshot_key.ts";
import type { Changes, SnapshotDb } from "./database.ts";
import type { ShardSnapshotterOptions, SnapshotProgress } from "./shard_snapshotter.ts";
import { ObjectExistsError } from "./store/snapshot_store.ts";

/** What the store holds of a shard, as a producer knows it. */
export interface ShardState {
  /** The shard's objects. */
  objects: Snapshot[];
  /** The latest point, if there is one. */
  point?: Snapshot;
  /** What restoring the latest point costs a consumer. */
  chain?: ChainCost;
  /**
   * Set when the latest point is another producer's: this run's put of it found the other's
   * object there. The run's database is then not provably that point (the other may run
   * another generator release): it is neither kept as its local copy nor built on by a delta.
   */
  theirs?: boolean;
}

/** Reports a phase of the run to the snapshotter's `onProgress`. */
export type ReportProgress = (
  phase: SnapshotProgress["phase"],
  extra: Partial<SnapshotProgress> & { sequenceNumber: string },
) => void;

/** What publishing needs from the run. */
export interface PublishContext {
  /** The snapshotter's options. */
  options: ShardSnapshotterOptions;
  /** The run's working directory. */
  dir: string;
  /** Aborts the run. */
  signal?: AbortSignal;
  /** Where publishing is logged. */
  log: Logger;
  /** When a full snapshot is due. */
  policy: Required<ChainPolicy>;
  /** The traced run this publishing is part of, if one is. */
  trace?: RunTrace;
  /** Reports progress. */
  progress: ReportProgress;
  /** The records the run applied so far (for the log). */
  applied: number;
}

/**
 * Publishes the point `db` reached on top of `state`: a delta when the changes were recorded;
 * a full snapshot instead when the chain has grown past the policy, with the delta beside it
 * only when the delta saves consumers that hold the point before it enough
 * ({@linkcode deltaBesideFull}); a full alone when the shard is closed or no delta can be taken.
 *
 * @returns The shard as it stands afterwards, with the point just published as its latest.
 */
export async function publish(
  ctx: PublishContext,
  db: SnapshotDb,
  state: ShardState,
): Promise<ShardState> {
  const reason = fullReason(ctx.options, db, state);
  if (reason !== undefined) {
    if (state.point && !ctx.options.full) {
      ctx.log.info(`publishing a full snapshot: ${reason}`, fields(ctx));
    }
    return await putFull(ctx, await encodeFull(ctx, db), state.objects);
  }
  const delta = await encodeDeltaOf(ctx, db, db.takeChanges()!, state.point!);
  const chain = {
    ...state.chain!,
    deltas: state.chain!.deltas + 1,
    deltaBytes: state.chain!.deltaBytes + delta.size,
  };
  if (!fullDue(chain, ctx.policy)) {
    const put = await putDelta(ctx, delta);
    const objects = [...put.objects, put.point];
    if (!put.orphaned) {
      return published(ctx, { objects, point: put.point, chain, theirs: put.theirs });
    }
    warnOrphaned(ctx, put.point);
    return await putFull(ctx, await encodeFull(ctx, db), objects);
  }
  const full = await encodeFull(ctx, db);
  const beside = deltaBesideFull(delta.size, full.size, ctx.policy);
  ctx.log.info(
    beside
      ? "the chain has grown past its policy; publishing a full snapshot too"
      : "the chain has grown past its policy; publishing a full snapshot instead of the delta (it would save a consumer less than an object costs)",
    {
      ...fields(ctx),
      deltas: chain.deltas,
      deltaBytes: chain.deltaBytes,
      fullBytes: chain.fullBytes,
    },
  );
  if (!beside) {
    await Deno.remove(delta.file).catch(() => {});
    return await putFull(ctx, full, state.objects);
  }
  const put = await putDelta(ctx, delta);
  if (put.orphaned) warnOrphaned(ctx, put.point);
  return await putFull(ctx, full, [...put.objects, put.point]);
}

function warnOrphaned(ctx: PublishContext, delta: Snapshot): void {
  ctx.log.warn(
    "another producer collected the chain this delta applies to; publishing a full snapshot too",
    { ...fields(ctx), key: delta.key },
  );
}

/** Puts `full` and returns the shard with it as its latest point, a chain of its own. */
async function putFull(
  ctx: PublishContext,
  full: EncodedFull,
  objects: Snapshot[],
): Promise<ShardState> {
  const { point, theirs } = await publishFull(ctx, full);
  const chain = { fullBytes: point.size ?? 0, deltas: 0, deltaBytes: 0 };
  return published(ctx, { objects: [...objects, point], point, chain, theirs });
}

function published(ctx: PublishContext, state: ShardState): ShardState {
  const point = state.point!;
  recordPublished(ctx.options);
  ctx.trace?.set("streambolt.snapshot.kind", point.kind);
  ctx.progress("done", { sequenceNumber: point.sequenceNumber });
  return state;
}

/** Why this point must be published whole, if it must. */
function fullReason(
  o: ShardSnapshotterOptions,
  db: SnapshotDb,
  state: ShardState,
): string | undefined {
  if (o.full) return "a full snapshot was asked for";
  if (!state.point || !state.chain) return "there is no earlier point";
  if (state.theirs) return "another producer published the point this run would build on";
  if (db.final) return "the shard is closed";
  return db.deltaBlocker();
}

/** A delta published. */
interface PublishedDelta {
  point: Snapshot;
  /** The shard's other objects, listed after it was published. */
  objects: Snapshot[];
  /** Whether it applies to a point no chain in the store reaches now. */
  orphaned: boolean;
  /** Whether another producer's delta stands at its key instead. */
  theirs: boolean;
}

/** A full snapshot published. */
interface PublishedFull {
  point: Snapshot;
  /** Whether another producer's snapshot stands at its key instead. */
  theirs: boolean;
}

/** A delta encoded into the run's directory, not yet put. */
interface EncodedDelta {
  parts: SnapshotKeyParts;
  key: string;
  /** The encoded file. */
  file: string;
  /** Its stored bytes. */
  size: number;
  metadata: Record<string, string>;
  rawSize: number;
}

async function encodeDeltaOf(
  ctx: PublishContext,
  db: SnapshotDb,
  changes: Changes,
  base: Snapshot,
): Promise<EncodedDelta> {
  const o = ctx.options;
  const parts: SnapshotKeyParts = {
    ...pointParts(o, db.sequenceNumber),
    final: false,
    encoding: o.encoding ?? "zstd",
    kind: "delta",
    baseSequenceNumber: base.sequenceNumber,
  };
  const encoded = await phase(ctx, "encode", () =>
    Promise.resolve(encodeDelta({
      header: {
        stream: o.stream,
        shardId: o.shardId,
        baseSequenceNumber: base.sequenceNumber,
        sequenceNumber: parts.sequenceNumber,
        schema: changes.schema,
        base: changes.base,
        createdAt: new Date().toISOString(),
      },
      patchset: changes.patchset,
    }, parts.encoding)));
  const file = join(ctx.dir, "delta.bin");
  await Deno.writeFile(file, encoded.bytes);
  const metadata = {
    sha256: encoded.sha256,
    "raw-size": String(encoded.rawSize),
    kind: "delta",
    base: base.sequenceNumber,
    ...pointMetadata(db),
  };
  const size = encoded.bytes.length;
  return { parts, key: snapshotKey(parts), file, size, metadata, rawSize: encoded.rawSize };
}

async function putDelta(ctx: PublishContext, delta: EncodedDelta): Promise<PublishedDelta> {
  const { parts, key, size } = delta;
  const ours = await put(ctx, key, delta.file, delta.metadata, {
    sequenceNumber: parts.sequenceNumber,
    raw: delta.rawSize,
    stored: size,
  });
  const now = await noticeForks(ctx, parts.baseSequenceNumber!, key);
  return {
    point: snapshotOf(ctx.options, parts, key, size),
    // The listing is the shard as it stands (ours is added back with its size): a follower's
    // view never grows past what the store holds.
    objects: now.filter((s) => s.key !== key),
    // A racing producer may have deleted the chain of the base since this run listed it.
    orphaned: !planRestore(now, { target: parts }),
    theirs: !ours,
  };
}

/** A full snapshot encoded into the run's directory, not yet put. */
interface EncodedFull {
  parts: SnapshotKeyParts;
  /** The encoded file. */
  file: string;
  /** Its stored bytes. */
  size: number;
  metadata: Record<string, string>;
  rawSize: number;
}

async function encodeFull(ctx: PublishContext, db: SnapshotDb): Promise<EncodedFull> {
  const o = ctx.options;
  const parts: SnapshotKeyParts = {
    ...pointParts(o, db.sequenceNumber),
    final: db.final,
    encoding: o.encoding ?? "zstd",
    kind: "full",
  };
  if (o.compact !== false) {
    ctx.progress("compact", { sequenceNumber: db.sequenceNumber });
    await phase(ctx, "compact", () => Promise.resolve(db.compact()));
  }
  db.optimize();
  const file = join(ctx.dir, "upload.bin");
  const encoded = await phase(ctx, "encode", () => encodeFile(db.file, file, parts.encoding));
  const metadata = {
    sha256: encoded.sha256,
    "raw-size": String(encoded.rawSize),
    ...pointMetadata(db),
  };
  return { parts, file, size: encoded.storedSize, metadata, rawSize: encoded.rawSize };
}

async function publishFull(ctx: PublishContext, full: EncodedFull): Promise<PublishedFull> {
  const { parts, size } = full;
  const key = snapshotKey(parts);
  const ours = await put(ctx, key, full.file, full.metadata, {
    sequenceNumber: parts.sequenceNumber,
    raw: full.rawSize,
    stored: size,
  });
  await Deno.remove(full.file).catch(() => {});
  return { point: snapshotOf(ctx.options, parts, key, size), theirs: !ours };
}

/** The object just published, as one of the shard's objects. */
function snapshotOf(
  o: ShardSnapshotterOptions,
  parts: SnapshotKeyParts,
  key: string,
  size: number,
): Snapshot {
  return {
    ...parts,
    kind: parts.kind ?? "full",
    key,
    localFile: localSnapshotFile(o.localPath, { ...parts, final: false }),
    size,
    lastModified: new Date(),
  };
}

/**
 * Puts `file` at `key` unless an object is there already (another producer's: it stands).
 *
 * @returns Whether the object at `key` is this one (false: another producer's stands).
 */
async function put(
  ctx: PublishContext,
  key: string,
  file: string,
  metadata: Record<string, string>,
  sizes: { sequenceNumber: string; raw: number; stored: number },
): Promise<boolean> {
  ctx.log.info("publishing snapshot", {
    ...fields(ctx),
    key,
    records: ctx.applied,
    rawBytes: sizes.raw,
    storedBytes: sizes.stored,
  });
  const progress = (bytesUploaded: number) =>
    ctx.progress("upload", { sequenceNumber: sizes.sequenceNumber, bytesUploaded });
  progress(0);
  try {
    await phase(ctx, "upload", () =>
      ctx.options.store.put(key, file, {
        metadata: { ...metadata, "format-version": String(FORMAT_VERSION) },
        ifNoneMatch: true,
        signal: ctx.signal,
        onProgress: progress,
      }));
    recordTransfer("uploaded", ctx.options, metadata.kind ?? "full", sizes.stored);
    return true;
  } catch (error) {
    if (!(error instanceof ObjectExistsError)) throw error;
    // Another producer published the same position first: its snapshot stands.
    ctx.log.warn("another producer published this snapshot first; keeping theirs", {
      ...fields(ctx),
      key,
    });
    return false;
  }
}

/** Two producers that built on the same point publish two deltas of it: say so.
 * @returns The shard's objects, listed after the delta was published. */
async function noticeForks(ctx: PublishContext, base: string, key: string): Promise<Snapshot[]> {
  const o = ctx.options;
  const now = await listShardSnapshots(o.store, o.stream, o.shardId, "", ctx.signal);
  const siblings = now.filter((s) =>
    s.kind === "delta" && s.baseSequenceNumber === base && s.key !== key
  );
  if (siblings.length === 0) return now;
  ctx.log.warn(
    "another producer published a delta of the same point; both are valid, consumers take the newest",
    {
      ...fields(ctx),
      key,
      others: siblings.map((s) => s.key).join(","),
    },
  );
  return now;
}

/**
 * What a stored object says about its point besides the key (S3 user metadata, or the file
 * store's sidecar), so `status` can read it with a HEAD instead of a download.
 */
function pointMetadata(db: SnapshotDb): Record<string, string> {
  const meta = db.metadata();
  return {
    // Which publication of the point this is (a point can be published again after a loss):
    // a producer builds on its local copy only when it is this one.
    "created-at": meta.createdAt,
    "updated-at": meta.updatedAt,
    "records-applied": String(meta.recordsApplied),
    "records-skipped": String(meta.recordsSkipped),
    ...(meta.lastArrivalAt ? { "last-arrival-at": meta.lastArrivalAt } : {}),
    ...(meta.acceptedGaps.length > 0 ? { "accepted-gaps": String(meta.acceptedGaps.length) } : {}),
  };
}

function pointParts(
  o: ShardSnapshotterOptions,
  sequenceNumber: string,
): Pick<SnapshotKeyParts, "stream" | "shardId" | "sequenceNumber"> {
  return { stream: o.stream, shardId: o.shardId, sequenceNumber };
}

function phase<T>(ctx: PublishContext, name: string, work: () => Promise<T>): Promise<T> {
  return ctx.trace ? ctx.trace.phase(name, work) : work();
}

function fields(ctx: PublishContext): { stream: string; shard: string } {
  return { stream: ctx.options.stream, shard: ctx.options.shardId };
}
