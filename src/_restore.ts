/**
 * Restoring a point of a shard from its stored objects: choosing the cheapest chain (a full
 * snapshot and the deltas after it, or the deltas after a point already held locally), then
 * downloading, verifying and applying it object by object.
 *
 * The objects of one shard form a graph: a full snapshot is a point on its own; a delta leads
 * from the point it applies to (its base) to a later one. A point is restorable when a path of
 * objects reaches it from a full snapshot (or from the local point). A delta whose base is not
 * restorable (a gap, a missing or refused object) is never applied.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { applyDelta, fetchDelta } from "./_delta.ts";
import { fetchSnapshot, readMetadataOf } from "./_snapshot_io.ts";
import { SnapshotIntegrityError, SnapshotVanishedError } from "./errors.ts";
import { readSnapshotMetadata, type SnapshotMetadata } from "./metadata.ts";
import { compareSequenceNumbers, compareSnapshots, type Snapshot } from "./snapshot.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";
import { WatchedStore } from "./_watched_store.ts";

/** What to restore. */
export interface PlanOptions {
  /** The point (sequence number) to reach; the newest restorable one when left out. */
  target?: { sequenceNumber: string; final?: boolean };
  /** A point already held locally: deltas from it cost nothing to start from. */
  from?: string;
  /** Keys not to use (they failed verification). */
  exclude?: ReadonlySet<string>;
}

/** How to reach a point. */
export interface RestorePlan {
  /** The objects to apply in order: a full snapshot (unless starting from the local point),
   * then deltas. Empty when the local point is already the target. */
  path: Snapshot[];
  /** The point reached. */
  sequenceNumber: string;
  /** Whether the point reached is a final one. */
  final: boolean;
  /** An object at the point reached (the path's last), when the store holds one. */
  target?: Snapshot;
  /** Newer objects that no chain reaches (a gap, or a refused object on the way). */
  unreachable: Snapshot[];
}

interface Reach {
  /** Stored bytes to get here. */
  cost: number;
  /** The object that gets here (none for the local point). */
  via?: Snapshot;
  sequenceNumber: string;
  final: boolean;
}

const pointId = (s: { sequenceNumber: string; final?: boolean }) =>
  `${s.sequenceNumber}${s.final ? ".final" : ""}`;

/**
 * What a delta costs to restore per stored byte, relative to a full snapshot: applying a
 * patchset row by row costs about this many times more than decoding a whole database per
 * stored byte (`deno task bench`, figure 9: 13.5 to 14.3; e.g. a 258 KB delta of 1% of
 * 1,000,000 keys in ~76 ms against ~470 ms to decode the 24.5 MB full).
 */
export const DELTA_COST_FACTOR = 14;

/**
 * What every object adds to a restore, in full-snapshot bytes: a request, a verification, a
 * transaction (measured here: 6 to 12 ms to fetch and check a small delta, the time a full
 * snapshot takes to decode about 256 KiB to 512 KiB).
 */
export const OBJECT_COST_BYTES = 256 * 1024;

/**
 * Plans the cheapest restore of a point of one shard, by estimated cost: stored bytes, a
 * delta's weighted by {@linkcode DELTA_COST_FACTOR}, and {@linkcode OBJECT_COST_BYTES} per
 * object.
 *
 * @param snapshots Every object of the shard.
 * @returns The plan, or `undefined` when no point is restorable (or the target is not).
 */
export function planRestore(
  snapshots: Snapshot[],
  options: PlanOptions = {},
): RestorePlan | undefined {
  const { usable, best } = reach(snapshots, options);
  const reached = options.target ? best.get(pointId(options.target)) : newest(best);
  if (!reached) return undefined;
  const path: Snapshot[] = [];
  for (let step: Reach | undefined = reached; step?.via;) {
    path.unshift(step.via);
    step = step.via.kind === "full" ? undefined : best.get(step.via.baseSequenceNumber!);
  }
  return {
    path,
    sequenceNumber: reached.sequenceNumber,
    final: reached.final,
    target: path.at(-1) ?? usable.findLast((s) => pointId(s) === pointId(reached)),
    unreachable: usable.filter((s) => !best.has(pointId(s)) && compareSnapshots(s, reached) > 0),
  };
}

/**
 * Every point of a shard that a chain reaches, newest first.
 *
 * @param snapshots Every object of the shard.
 * @returns The points.
 */
export function restorablePoints(
  snapshots: Snapshot[],
): Array<{ sequenceNumber: string; final: boolean }> {
  return [...reach(snapshots, {}).best.values()]
    .map(({ sequenceNumber, final }) => ({ sequenceNumber, final }))
    .sort((a, b) => compareSnapshots(b, a));
}

/** The cheapest known way to each point (a shortest-path pass in sequence order). */
function reach(
  snapshots: Snapshot[],
  options: PlanOptions,
): { usable: Snapshot[]; best: Map<string, Reach> } {
  const usable = snapshots.filter((s) => !options.exclude?.has(s.key)).sort(compareSnapshots);
  const best = new Map<string, Reach>();
  const offer = (s: Snapshot, cost: number) => {
    const known = best.get(pointId(s));
    if (!known || cost < known.cost) {
      best.set(pointId(s), { cost, via: s, sequenceNumber: s.sequenceNumber, final: s.final });
    }
  };
  if (options.from !== undefined) {
    best.set(options.from, { cost: 0, sequenceNumber: options.from, final: false });
  }
  // Sorted by sequence number: every delta's base is settled before the delta is seen.
  for (const s of usable) {
    if (s.kind === "full") offer(s, (s.size ?? 1) + OBJECT_COST_BYTES);
    else {
      const base = best.get(s.baseSequenceNumber!);
      if (base) offer(s, base.cost + DELTA_COST_FACTOR * (s.size ?? 1) + OBJECT_COST_BYTES);
    }
  }
  return { usable, best };
}

function newest(best: Map<string, Reach>): Reach | undefined {
  let found: Reach | undefined;
  for (const reach of best.values()) {
    if (!found || compareSnapshots(reach, found) > 0) found = reach;
  }
  return found;
}

/**
 * Listings of a shard in a row a consumer makes, each of whose plans ran into an object
 * deleted since it was listed (by a producer's retention or `gc`), before it gives up.
 */
export const MAX_LISTINGS = 5;

/**
 * After a plan ran into an object deleted since the shard was listed: gives up once that
 * happened to `listings` listings in a row; otherwise the caller lists again and re-plans.
 *
 * @throws {SnapshotVanishedError} After {@linkcode MAX_LISTINGS} listings in a row.
 */
export function giveUpAfterVanished(error: SnapshotVanishedError, listings: number): void {
  if (listings < MAX_LISTINGS) return;
  throw new SnapshotVanishedError(error.key, listings, { cause: error.cause ?? error });
}

/**
 * Restores a plan into `file`: downloads and verifies the full snapshot (when the plan starts
 * with one; otherwise `file` must hold the plan's starting point), then downloads, verifies
 * and applies each delta in its own transaction.
 *
 * @returns The metadata of the restored point.
 * @throws {SnapshotIntegrityError} Naming the first object that failed verification.
 * @throws {SnapshotVanishedError} Naming an object deleted since it was listed.
 */
export async function restore(
  store: SnapshotStore,
  plan: RestorePlan,
  file: string,
  signal?: AbortSignal,
): Promise<SnapshotMetadata> {
  store = WatchedStore.of(store);
  let metadata: SnapshotMetadata | undefined;
  const deltas = plan.path.filter((s) => s.kind === "delta");
  const full = plan.path.find((s) => s.kind === "full");
  if (full) metadata = await fetchSnapshot(store, full, file, signal);
  if (deltas.length === 0) return metadata ?? readMetadataOf(file, plan.target?.key ?? file);
  const db = new DatabaseSync(file);
  try {
    db.exec("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF");
    await applyDeltas(store, db, deltas, scratchBeside(file), signal);
    return readSnapshotMetadata(db)!;
  } finally {
    db.close();
  }
}

/**
 * Downloads, verifies and applies deltas, in order, to an open database that holds the first
 * one's base point. Each is applied whole or not at all.
 *
 * @throws {SnapshotVanishedError} Naming a delta deleted since it was listed (the deltas
 * before it stay applied).
 */
export async function applyDeltas(
  store: SnapshotStore,
  db: DatabaseSync,
  deltas: Snapshot[],
  scratchFile: string,
  signal?: AbortSignal,
): Promise<void> {
  store = WatchedStore.of(store);
  for (const delta of deltas) {
    applyDelta(db, await fetchDelta(store, delta, scratchFile, signal), delta.key);
  }
}

/** The scratch file for a download beside `file`. */
export function scratchBeside(file: string): string {
  return join(file, "..", `.delta-${crypto.randomUUID()}`);
}

/** A point of a shard held in a local file. */
export interface LocalPoint {
  /** The file. */
  file: string;
  /** The point it holds. */
  sequenceNumber: string;
}

/**
 * The newest point of a shard held in `dir` (files named `<sequence number>.sqlite`, as
 * downloads are), checked against the metadata inside each file.
 */
export async function findLocalPoint(
  dir: string,
  stream: string,
  shardId: string,
): Promise<LocalPoint | undefined> {
  const candidates: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = /^(0|[1-9][0-9]*)\.sqlite$/.exec(entry.name);
      if (entry.isFile && match) candidates.push(match[1]);
    }
  } catch {
    return undefined;
  }
  candidates.sort((a, b) => compareSequenceNumbers(b, a));
  for (const sequenceNumber of candidates) {
    const file = join(dir, `${sequenceNumber}.sqlite`);
    try {
      const meta = readMetadataOf(file, file);
      const ok = meta.stream === stream && meta.shardId === shardId &&
        meta.sequenceNumber === sequenceNumber && !meta.final;
      if (ok) return { file, sequenceNumber };
    } catch {
      // Not a snapshot of this shard: pass over it.
    }
  }
  return undefined;
}

/**
 * Restores a plan into `target`, which is renamed into place only once every object is
 * verified and applied. A plan that starts from a local point consumes that file (it is moved,
 * then brought forward); if a delta then fails, the file is put back under the name of the
 * point it holds.
 *
 * @returns The metadata of the restored point.
 */
export async function restoreInto(
  store: SnapshotStore,
  plan: RestorePlan,
  target: string,
  options: { local?: LocalPoint; signal?: AbortSignal } = {},
): Promise<SnapshotMetadata> {
  await Deno.mkdir(dirname(target), { recursive: true });
  const fromLocal = options.local && plan.path[0]?.kind !== "full";
  if (fromLocal && plan.path.length === 0) {
    if (options.local!.file !== target) await Deno.rename(options.local!.file, target);
    return readMetadataOf(target, target);
  }
  const work = join(dirname(target), `.restore-${crypto.randomUUID()}.sqlite`);
  if (fromLocal) await Deno.rename(options.local!.file, work);
  try {
    const metadata = await restore(store, plan, work, options.signal);
    if (metadata.sequenceNumber !== plan.sequenceNumber || metadata.final !== plan.final) {
      throw new SnapshotIntegrityError(
        plan.target?.key ?? target,
        `Cannot use the restored point as it holds ${metadata.sequenceNumber}, not ${plan.sequenceNumber}: current value is "${plan.target?.key}"`,
      );
    }
    await Deno.rename(work, target);
    return metadata;
  } catch (error) {
    if (fromLocal) await putBack(work, dirname(target));
    throw error;
  } finally {
    await Deno.remove(work).catch(() => {});
  }
}

/** A local point whose refresh failed: named again after the point it now holds. */
async function putBack(work: string, dir: string): Promise<void> {
  try {
    const meta = readMetadataOf(work, work);
    if (!meta.final) await Deno.rename(work, join(dir, `${meta.sequenceNumber}.sqlite`));
  } catch {
    // Unreadable: it is removed, and the next restore downloads a full snapshot.
  }
}
