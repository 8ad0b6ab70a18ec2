/**
 * Garbage collection of old snapshots by the one retention model ({@linkcode RetentionPolicy}):
 * keep every restorable point of a shard younger than an age and the newest N points (a point
 * is reached by a full snapshot, or by a full snapshot and the deltas after it), with every
 * object their restore needs; delete the rest. The producer collects by the same model after
 * it publishes.
 *
 * @module
 */
import { planRestorePaths } from "./restore_plan.ts";
import { listShardSnapshots } from "./_fetch.ts";
import {
  planShardRetention,
  resolveRetention,
  type RetentionPlan,
  type RetentionPolicy,
} from "./retention.ts";
import { compareSnapshots, type Snapshot } from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** Options for {@linkcode planGarbageCollection} and {@linkcode collectGarbage}. */
export interface GarbageCollectionOptions {
  /** What to keep. Defaults to `DEFAULT_RETENTION`: every point of the last day, and the
   * newest. */
  retention?: RetentionPolicy;
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
 * Picks the objects to delete, shard by shard: every object the points the retention keeps
 * need is kept, and so is everything at or after the oldest of them, except a delta that
 * deleting the older objects would leave without a base (no chain could reach it again): the
 * newest point of a shard always stays restorable, whatever the options, and no delta that a
 * chain reaches before is left unreachable after. While ages count, an object younger than the
 * age, or of unknown age, is kept too, and so is what its restore needs.
 *
 * @param snapshots Objects of any number of shards of one stream.
 * @param options What to keep, and the time ages are measured from.
 * @returns The objects to delete, oldest first within each shard, and why each object is kept
 * or deleted.
 * @throws {InvalidArgumentError} When the retention is not valid.
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
 * const { doomed } = planGarbageCollection(snaps, { retention: { keepPoints: 1 } });
 * assert.deepEqual(doomed.map((s) => s.key), ["s/shardId-0/1.sqlite.zst"]);
 * ```
 */
export function planGarbageCollection(
  snapshots: Snapshot[],
  options: GarbageCollectionOptions = {},
): RetentionPlan {
  const policy = resolveRetention(options.retention, "collect garbage");
  const now = (options.now ?? new Date()).getTime();
  const plan: RetentionPlan = { doomed: [], why: new Map() };
  for (const list of byShard(snapshots).values()) {
    const shard = planShardRetention(list, policy, now);
    plan.doomed.push(...shard.doomed);
    for (const [key, reason] of shard.why) plan.why.set(key, reason);
  }
  return plan;
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
    // Every delta's base, planned in one pass (a plan per delta was quadratic in the objects).
    const bases = planRestorePaths(
      list,
      list.flatMap((s) =>
        s.kind === "delta" ? [{ sequenceNumber: s.baseSequenceNumber!, final: false }] : []
      ),
    );
    for (const s of [...list].sort(compareSnapshots)) {
      if (s.kind === "full") {
        byFull.set(s.key, { shardId, full: s, deltas: [] });
        continue;
      }
      // The chain that reaches its base: the delta leads on from there.
      const from = bases.get(s.baseSequenceNumber!)?.[0];
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
  /** Why each object was kept or deleted, by key. */
  why: Map<string, string>;
  /** The chains the objects formed before the deletion. */
  chains: SnapshotChain[];
}

/**
 * Deletes old snapshots of a stream (or one shard) from a store.
 *
 * @param store The store.
 * @param stream The stream name.
 * @param options What to keep (`retention`, measured from `now`); `shardId` limits it to one
 * shard; `dryRun` deletes nothing; `signal` aborts.
 * @returns What was (or would be) deleted.
 *
 * @example Usage
 * ```ts ignore
 * import { collectGarbage, FileSnapshotStore } from "../mod.ts";
 * const store = new FileSnapshotStore({ root: "./snapshots" });
 * const { deleted } = await collectGarbage(store, "orders", {
 *   retention: { retainMs: 7 * 86_400_000, keepPoints: 3 }, // a week, and at least 3 points
 * });
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
  const { doomed, why } = planGarbageCollection(snapshots, options);
  if (!options.dryRun && doomed.length > 0) {
    await store.delete(doomed.map((s) => s.key), { signal: options.signal });
  }
  return {
    deleted: doomed,
    kept: snapshots.length - doomed.length,
    why,
    chains: describeChains(snapshots),
  };
}
