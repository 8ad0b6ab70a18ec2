/**
 * Garbage collection of old snapshots: keep the newest N restorable points of every shard (a
 * point is reached by a full snapshot, or by a full snapshot and the deltas after it), with
 * every object their restore needs, optionally deleting only what is older than an age.
 *
 * @module
 */
import { planRestore, restorablePoints } from "./restore_plan.ts";
import { listShardSnapshots } from "./_fetch.ts";
import { InvalidArgumentError } from "./errors.ts";
import { compareSequenceNumbers, compareSnapshots, type Snapshot } from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** Options for {@linkcode planGarbageCollection} and {@linkcode collectGarbage}. */
export interface GarbageCollectionOptions {
  /** Restorable points to keep per shard, newest first; at least 1. */
  keep: number;
  /** Only delete objects last modified more than this many ms ago. */
  olderThanMs?: number;
  /** The time to measure ages from. Defaults to now. */
  now?: Date;
}

/** A full snapshot and the deltas whose restore starts from it. */
export interface SnapshotChain {
  /** The shard. */
  shardId: string;
  /** The chain's full snapshot; undefined for deltas no chain reaches (a gap). */
  full?: Snapshot;
  /** Its deltas, oldest first. */
  deltas: Snapshot[];
}

/**
 * Picks the objects to delete. Every object the newest `keep` restorable points of a shard
 * need is kept, and so is everything at or after the oldest of them, except a delta that
 * deleting the older objects would leave without a base (no chain could reach it again): the
 * newest point of a shard always stays restorable, whatever the options, and no delta that a
 * chain reaches before is left unreachable after. With an age limit, an object younger than
 * it, or of unknown age, is kept too, and so is what its restore needs.
 *
 * @param snapshots Objects of any number of shards of one stream.
 * @param options How many points to keep and how old a deleted object must be.
 * @returns The objects to delete, oldest first within each shard.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSnapshotKey } from "./snapshot_key.ts";
 * import { planGarbageCollection } from "./gc.ts";
 * const snaps = [
 *   "s/shardId-0/1.sqlite.zst", // an old full snapshot
 *   "s/shardId-0/2.sqlite.zst", // the full the newest point is restored from
 *   "s/shardId-0/3.from-2.delta.zst", // the newest point
 * ].map((key) => ({ ...parseSnapshotKey(key)!, key, localFile: "", size: 100 }));
 * const doomed = planGarbageCollection(snaps, { keep: 1 });
 * assert.deepEqual(doomed.map((s) => s.key), ["s/shardId-0/1.sqlite.zst"]);
 * ```
 */
export function planGarbageCollection(
  snapshots: Snapshot[],
  options: GarbageCollectionOptions,
): Snapshot[] {
  if (!Number.isInteger(options.keep) || options.keep < 1) {
    throw new InvalidArgumentError(
      `Cannot collect garbage as keep must be a whole number of at least 1: current value is ${options.keep}`,
    );
  }
  const olderThan = options.olderThanMs;
  if (olderThan !== undefined && (!Number.isFinite(olderThan) || olderThan < 0)) {
    throw new InvalidArgumentError(
      `Cannot collect garbage as the age must be at least 0 ms: current value is ${olderThan}`,
    );
  }
  const now = (options.now ?? new Date()).getTime();
  const oldEnough = (s: Snapshot) =>
    olderThan === undefined ||
    (s.lastModified !== undefined && now - s.lastModified.getTime() > olderThan);
  return [...byShard(snapshots).values()].flatMap((list) =>
    doomedOf(list, options.keep, oldEnough)
  );
}

/**
 * The objects of one shard to delete: those none of its newest `keep` points needs that are
 * old enough, and the deltas that deleting them would leave unreachable (no kept chain leads to
 * their base). A delta too young to delete keeps the objects its base needs instead: every
 * delta a chain reached before still has one after.
 */
function doomedOf(
  list: Snapshot[],
  keep: number,
  oldEnough: (s: Snapshot) => boolean,
): Snapshot[] {
  const kept = restorablePoints(list).slice(0, keep);
  if (kept.length === 0) return []; // nothing restorable: delete nothing, let a human look
  const needed = new Set<string>();
  for (const point of kept) {
    for (const s of planRestore(list, { target: point })!.path) needed.add(s.key);
  }
  const oldest = kept[kept.length - 1];
  const before = (s: Snapshot) =>
    (compareSequenceNumbers(s.sequenceNumber, oldest.sequenceNumber) ||
      Number(s.final) - Number(oldest.final)) < 0;
  const doomed = new Set(
    list.filter((s) => !needed.has(s.key) && before(s) && oldEnough(s)).map((s) => s.key),
  );
  const reached = new Set(reachedDeltas(list).map((s) => s.key));
  // Each turn dooms an unreachable delta (which changes no other object's reach) or makes one
  // reachable for good, so this ends within twice the number of deltas.
  for (let turn = 0; turn <= 2 * list.length; turn++) {
    const remaining = list.filter((s) => !doomed.has(s.key));
    const orphan = remaining.find((s) =>
      reached.has(s.key) && !reachedDeltas(remaining).includes(s)
    );
    if (!orphan) break;
    if (!needed.has(orphan.key) && oldEnough(orphan)) doomed.add(orphan.key);
    else {
      const base = { sequenceNumber: orphan.baseSequenceNumber!, final: false };
      for (const s of planRestore(list, { target: base })!.path) doomed.delete(s.key);
    }
  }
  return list.filter((s) => doomed.has(s.key)).sort(compareSnapshots);
}

/** The deltas whose base a chain of `list` reaches, oldest first. */
function reachedDeltas(list: Snapshot[]): Snapshot[] {
  const points = new Set(
    restorablePoints(list).filter((p) => !p.final).map((p) => p.sequenceNumber),
  );
  return list.filter((s) => s.kind === "delta" && points.has(s.baseSequenceNumber!))
    .sort(compareSnapshots);
}

function byShard(snapshots: Snapshot[]): Map<string, Snapshot[]> {
  const shards = new Map<string, Snapshot[]>();
  for (const s of snapshots) {
    const list = shards.get(s.shardId) ?? [];
    list.push(s);
    shards.set(s.shardId, list);
  }
  return shards;
}

/**
 * Groups objects into chains: each full snapshot with the deltas whose base its chain reaches
 * (by the cheapest restore of that base); deltas whose base no chain reaches (a gap) form a
 * chain without a full.
 *
 * @param snapshots Objects of any number of shards of one stream.
 * @returns The chains, per shard oldest first.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSnapshotKey } from "./snapshot_key.ts";
 * import { describeChains } from "./gc.ts";
 * const snaps = ["s/shardId-0/2.sqlite.zst", "s/shardId-0/3.from-2.delta.zst"]
 *   .map((key) => ({ ...parseSnapshotKey(key)!, key, localFile: "", size: 100 }));
 * const [chain] = describeChains(snaps);
 * assert.equal(chain.full?.key, "s/shardId-0/2.sqlite.zst");
 * assert.equal(chain.deltas.length, 1);
 * ```
 */
export function describeChains(snapshots: Snapshot[]): SnapshotChain[] {
  const chains: SnapshotChain[] = [];
  for (const [shardId, list] of byShard(snapshots)) {
    const byFull = new Map<string, SnapshotChain>();
    const orphans: SnapshotChain = { shardId, deltas: [] };
    for (const s of [...list].sort(compareSnapshots)) {
      if (s.kind === "full") {
        byFull.set(s.key, { shardId, full: s, deltas: [] });
        continue;
      }
      // The chain that reaches its base: the delta leads on from there.
      const base = { sequenceNumber: s.baseSequenceNumber!, final: false };
      const from = planRestore(list, { target: base })?.path[0];
      const chain = from ? byFull.get(from.key) : undefined;
      (chain ?? orphans).deltas.push(s);
    }
    chains.push(...byFull.values());
    if (orphans.deltas.length > 0) chains.push(orphans);
  }
  return chains;
}

/** Options for {@linkcode collectGarbage}. */
export interface CollectGarbageOptions extends GarbageCollectionOptions {
  /** Only this shard. */
  shardId?: string;
  /** List what would be deleted; delete nothing. */
  dryRun?: boolean;
  /** Aborts the listing and the deletion. */
  signal?: AbortSignal;
}

/** What {@linkcode collectGarbage} did. */
export interface GarbageCollectionResult {
  /** The objects deleted (or, in a dry run, that would be). */
  deleted: Snapshot[];
  /** How many objects were kept. */
  kept: number;
  /** The chains the objects formed before the deletion. */
  chains: SnapshotChain[];
}

/**
 * Deletes old snapshots of a stream (or one shard) from a store.
 *
 * @param store The store.
 * @param stream The stream name.
 * @param options What to keep; `shardId` limits it to one shard; `dryRun` deletes nothing;
 * `signal` aborts.
 * @returns What was (or would be) deleted.
 *
 * @example Usage
 * ```ts ignore
 * import { collectGarbage, FileSnapshotStore } from "../mod.ts";
 * const store = new FileSnapshotStore({ root: "./snapshots" });
 * const { deleted } = await collectGarbage(store, "orders", { keep: 3 });
 * ```
 */
export async function collectGarbage(
  store: SnapshotStore,
  stream: string,
  options: CollectGarbageOptions,
): Promise<GarbageCollectionResult> {
  const snapshots = await listShardSnapshots(
    store,
    stream,
    options.shardId,
    "",
    options.signal,
  );
  const deleted = planGarbageCollection(snapshots, options);
  if (!options.dryRun && deleted.length > 0) {
    await store.delete(deleted.map((s) => s.key), { signal: options.signal });
  }
  return { deleted, kept: snapshots.length - deleted.length, chains: describeChains(snapshots) };
}
