/**
 * Restoring a point of a shard from its stored objects, along a plan from `restore_plan.ts`:
 * downloading, verifying and applying it object by object into a file renamed into place only
 * when whole.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fetchDelta } from "./_delta.ts";
import { fetchSnapshot, readMetadataOf } from "./_fetch.ts";
import { SnapshotIntegrityError, SnapshotVanishedError } from "./errors.ts";
import type { SnapshotMetadata } from "./metadata.ts";
import type { RestorePlan } from "./restore_plan.ts";
import { compareSequenceNumbers, type Snapshot } from "./snapshot_key.ts";
import { SnapshotDb } from "./database.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";
import { WatchedStore } from "./_watched_store.ts";

// The plan, for the users of a restore that have not moved to restore_plan.ts yet.
export {
  DELTA_COST_FACTOR,
  OBJECT_COST_BYTES,
  type PlanOptions,
  planRestore,
  restorablePoints,
  type RestorePlan,
} from "./restore_plan.ts";

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
 * After a full snapshot the deltas are applied without a rollback journal (no copy of each page
 * before it changes: a delta of 1% of the bench's 1,000,000-row table applied in about a tenth
 * less time than with the journal in memory). `file` then holds nothing but what this call
 * wrote, and a caller removes it when the call fails (`restoreInto`, a producer's working
 * directory). A plan that starts from a point already in `file` keeps a journal in memory, so
 * that a delta that fails leaves `file` at the last point applied whole.
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
  const db = SnapshotDb.openPoint(file, full ? "scratch" : "restore");
  try {
    await applyDeltas(store, db, deltas, scratchBeside(file), signal);
    return db.metadata();
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
  db: SnapshotDb,
  deltas: Snapshot[],
  scratchFile: string,
  signal?: AbortSignal,
): Promise<void> {
  store = WatchedStore.of(store);
  for (const delta of deltas) {
    db.applyDelta(await fetchDelta(store, delta, scratchFile, signal), delta.key);
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
