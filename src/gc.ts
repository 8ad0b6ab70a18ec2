/**
 * Garbage collection of old snapshots: keep the newest N of every shard (never fewer than
 * one), optionally only deleting those older than an age.
 *
 * @module
 */
import { listShardSnapshots } from "./_snapshot_io.ts";
import { InvalidArgumentError } from "./errors.ts";
import { compareSnapshots, type Snapshot } from "./snapshot.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** Options for {@linkcode planGarbageCollection} and {@linkcode collectGarbage}. */
export interface GarbageCollectionOptions {
  /** Snapshots to keep per shard, newest first; at least 1. */
  keep: number;
  /** Only delete snapshots last modified more than this many ms ago. */
  olderThanMs?: number;
  /** The time to measure ages from. Defaults to now. */
  now?: Date;
}

/**
 * Picks the snapshots to delete. The newest snapshot of each shard is never picked, whatever
 * the options, and neither is one whose age is unknown when an age limit is given.
 *
 * @param snapshots Snapshots of any number of shards of one stream.
 * @param options How many to keep and how old a deleted one must be.
 * @returns The snapshots to delete, oldest first within each shard.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSnapshotKey } from "./snapshot.ts";
 * import { planGarbageCollection } from "./gc.ts";
 * const snaps = ["s/shardId-0/1.sqlite.zst", "s/shardId-0/2.sqlite.zst"].map((key) => ({
 *   ...parseSnapshotKey(key)!,
 *   key,
 *   localFile: "",
 * }));
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
  const byShard = new Map<string, Snapshot[]>();
  for (const s of snapshots) {
    const list = byShard.get(s.shardId) ?? [];
    list.push(s);
    byShard.set(s.shardId, list);
  }
  const doomed: Snapshot[] = [];
  for (const list of byShard.values()) {
    list.sort(compareSnapshots);
    const candidates = list.slice(0, Math.max(0, list.length - options.keep));
    for (const s of candidates) {
      if (olderThan !== undefined) {
        if (!s.lastModified || now - s.lastModified.getTime() <= olderThan) continue;
      }
      doomed.push(s);
    }
  }
  return doomed;
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
  /** The snapshots deleted (or, in a dry run, that would be). */
  deleted: Snapshot[];
  /** How many snapshots were kept. */
  kept: number;
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
  return { deleted, kept: snapshots.length - deleted.length };
}
