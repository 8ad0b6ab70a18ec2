/**
 * The producer's local copy of its latest published point: one database file per shard in the
 * producer's local dir, beside a record of what it holds, so the next run builds on it without
 * downloading. A copy is kept only when it is exactly the point published, and taken only when
 * it still matches its record.
 *
 * The copies live in a folder of their own, `<localPath>/<stream>/<shard>/producer/`: a finder
 * given the same local dir downloads to `<localPath>/<stream>/<shard>/<seq>.sqlite`, so neither
 * deletes, overwrites or builds on the other's files.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { readSnapshotMetadata } from "./metadata.ts";
import { localSnapshotFile, type Snapshot } from "./snapshot_key.ts";
import type { SnapshotDb } from "./database.ts";
import type { ShardSnapshotterOptions } from "./shard_snapshotter.ts";

/** The folder, beside a finder's downloads of the shard, that holds the producer's copies. */
export const PRODUCER_COPY_DIR = "producer";

/** Whose copy it is: the store published to, the shard, the producer's local dir. */
export type CopyOwner = Pick<ShardSnapshotterOptions, "store" | "stream" | "shardId" | "localPath">;

/** A local copy taken to build on. */
export interface TakenCopy {
  /** When a run last read the shard to its tip after the copy's point (ms since epoch). */
  caughtUpAt?: number;
}

/** What the local copy of a published point records beside the database file. */
interface CopyRecord {
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

/**
 * Moves the local copy to `file` when it holds exactly `sequenceNumber` of the owner's shard,
 * published to the owner's store.
 *
 * @returns What the copy recorded, or `undefined` when there is no such copy.
 */
export async function takeLocalCopy(
  owner: CopyOwner,
  sequenceNumber: string,
  file: string,
): Promise<TakenCopy | undefined> {
  const parts = { stream: owner.stream, shardId: owner.shardId, sequenceNumber, final: false };
  const copy = copyFile(owner, parts);
  let record: CopyRecord;
  let info: Deno.FileInfo;
  try {
    record = JSON.parse(await Deno.readTextFile(`${copy}.json`));
    info = await Deno.stat(copy);
  } catch {
    return undefined;
  }
  const matches = record.store === owner.store.url && record.stream === owner.stream &&
    record.shardId === owner.shardId &&
    record.sequenceNumber === sequenceNumber && record.size === info.size &&
    record.mtimeMs === info.mtime?.getTime() && metadataMatches(copy, record);
  if (!matches) return undefined;
  await Deno.rename(copy, file);
  await Deno.remove(`${copy}.json`).catch(() => {});
  return { caughtUpAt: record.caughtUpAt };
}

/**
 * Whether a database file (a local copy taken) is the publication of its point that the store
 * holds now, as the stored object's metadata names it (`created-at`, `updated-at`). A point
 * can be published again with other contents: the store lost it and the points after it, and
 * another producer rebuilt the shard (perhaps with another release of its generator). Objects
 * published before the metadata was added, and stores without `head`, are taken at their word.
 */
export async function isStoredPublication(
  store: CopyOwner["store"],
  point: Snapshot,
  file: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const stored = (await store.head?.(point.key, { signal }))?.metadata;
  if (stored?.["updated-at"] === undefined) return true;
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const meta = readSnapshotMetadata(db);
    return meta?.createdAt === stored["created-at"] && meta?.updatedAt === stored["updated-at"];
  } finally {
    db.close();
  }
}

/**
 * Keeps a closed database file, which holds exactly `point`, as the owner's local copy (the
 * only one of its shard), durable before it is named.
 *
 * @returns The point, with `localFile` naming the copy.
 */
export async function keepLocalCopy(
  owner: CopyOwner,
  file: string,
  point: Snapshot,
  caughtUpAt: number | undefined,
): Promise<Snapshot> {
  const target = copyFile(owner, { ...point, final: false });
  await Deno.mkdir(dirname(target), { recursive: true });
  // Durable before it is named: the next run builds on it without downloading.
  const handle = await Deno.open(file, { read: true, write: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
  await removeOtherCopies(dirname(target), target);
  await Deno.rename(file, target);
  const info = await Deno.stat(target);
  const record: CopyRecord = {
    store: owner.store.url,
    stream: owner.stream,
    shardId: owner.shardId,
    sequenceNumber: point.sequenceNumber,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
    caughtUpAt,
  };
  await Deno.writeTextFile(`${target}.json`, JSON.stringify(record));
  return { ...point, localFile: target };
}

/**
 * Starts writing `file`'s pages to disk (an fsync) without waiting for it: a run calls it once
 * its database holds the point it publishes, so that the disk writes overlap building and
 * putting the point. It is no durability guarantee (that is {@linkcode keepLocalCopy}'s own
 * fsync, after the last write, which then finds little left to write).
 *
 * @returns When the fsync is done; it never rejects (a failure is left to the fsync that counts).
 */
export function startFlush(file: string): Promise<void> {
  let handle: Deno.FsFile;
  try {
    // Opened and asked synchronously: the fsync is under way before this returns, even when
    // the caller's next work (building a patchset, compressing) holds the event loop.
    handle = Deno.openSync(file, { read: true, write: true });
  } catch {
    return Promise.resolve();
  }
  return handle.sync().catch(() => {}).finally(() => handle.close());
}

/**
 * Whether nothing changed an open database since its last point (changes not recorded count as
 * changed: a schema change, a generator's `onStart`, a recorded gap): only then may it stand as
 * that point's local copy. Restarts recording.
 */
export function standsAsPoint(db: SnapshotDb): boolean {
  return db.takeChanges()?.patchset.length === 0;
}

/** Where the owner's copy of a point lives. */
function copyFile(owner: CopyOwner, point: Parameters<typeof localSnapshotFile>[1]): string {
  const shared = localSnapshotFile(owner.localPath, point);
  return join(dirname(shared), PRODUCER_COPY_DIR, basename(shared));
}

function metadataMatches(file: string, record: CopyRecord): boolean {
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

/** Removes the copies in `dir` other than `keep` (one copy per shard), and those earlier
 * versions kept in the finder's folder above it. */
async function removeOtherCopies(dir: string, keep: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (path === keep || path === `${keep}.json`) continue;
    if (/^\d+(\.final)?\.sqlite(\.json)?$/.test(entry.name)) {
      await Deno.remove(path).catch(() => {});
    }
  }
  await removeLegacyCopies(dirname(dir));
}

/** Removes the copies earlier versions kept in `dir`: a file is one only while it still
 * matches the record beside it (a finder may since have downloaded the same point there). */
async function removeLegacyCopies(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const legacy = /^(\d+\.sqlite)\.json$/.exec(entry.name);
    if (!legacy) continue;
    const file = join(dir, legacy[1]);
    try {
      const record: CopyRecord = JSON.parse(await Deno.readTextFile(join(dir, entry.name)));
      const info = await Deno.stat(file);
      if (record.size === info.size && record.mtimeMs === info.mtime?.getTime()) {
        await Deno.remove(file);
      }
    } catch {
      // Gone already, or not a record: only the record goes.
    }
    await Deno.remove(join(dir, entry.name)).catch(() => {});
  }
}
