/**
 * What the producer and the consumer share: listing a shard's snapshots from a store, and
 * downloading one, verifying it before it is renamed into place.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { dirname, join } from "node:path";
import { decodeFile, sha256File } from "./_codec.ts";
import { SnapshotIntegrityError } from "./errors.ts";
import { recordTransfer } from "./_telemetry.ts";
import { readSnapshotMetadata, type SnapshotMetadata } from "./metadata.ts";
import {
  compareSnapshots,
  localSnapshotFile,
  parseSnapshotKey,
  type Snapshot,
  snapshotPrefix,
} from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** Every snapshot of one shard in a store, oldest first; other keys are ignored. */
export async function listShardSnapshots(
  store: SnapshotStore,
  stream: string,
  shardId: string | undefined,
  localPath: string,
  signal?: AbortSignal,
): Promise<Snapshot[]> {
  const found: Snapshot[] = [];
  for await (const object of store.list(snapshotPrefix(stream, shardId), { signal })) {
    const parts = parseSnapshotKey(object.key);
    if (!parts || parts.stream !== stream) continue;
    if (shardId !== undefined && parts.shardId !== shardId) continue;
    found.push({
      ...parts,
      key: object.key,
      localFile: localSnapshotFile(localPath, parts),
      size: object.size,
      lastModified: object.lastModified,
    });
  }
  return found.sort((a, b) =>
    a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : compareSnapshots(a, b)
  );
}

/**
 * Downloads a snapshot to `target` as plain SQLite: the stored bytes are hashed while they are
 * decoded, and the file is renamed into place only when the hash matches the one stored with
 * it and its metadata names the same stream, shard and sequence number as its key.
 */
export async function fetchSnapshot(
  store: SnapshotStore,
  snapshot: Snapshot,
  target: string,
  signal?: AbortSignal,
): Promise<SnapshotMetadata> {
  const dir = dirname(target);
  await Deno.mkdir(dir, { recursive: true });
  const id = crypto.randomUUID();
  const stored = join(dir, `.download-${id}`);
  const plain = join(dir, `.verify-${id}.sqlite`);
  try {
    const { metadata, size } = await store.download(snapshot.key, stored, { signal });
    recordTransfer("downloaded", snapshot, "full", size);
    const expected = metadata.sha256;
    if (!expected) {
      throw new SnapshotIntegrityError(
        snapshot.key,
        `Cannot verify snapshot as it has no stored checksum: current value is "${snapshot.key}"`,
      );
    }
    // Hash before decoding: only bytes that match their checksum are ever decompressed.
    const actual = await sha256File(stored);
    if (actual !== expected) {
      throw new SnapshotIntegrityError(
        snapshot.key,
        `Cannot use snapshot as its SHA-256 ${actual} does not match the stored ${expected}: current value is "${snapshot.key}"`,
      );
    }
    try {
      await decodeFile(stored, plain, snapshot.encoding);
    } catch (error) {
      throw new SnapshotIntegrityError(
        snapshot.key,
        `Cannot decode snapshot (${(error as Error).message}): current value is "${snapshot.key}"`,
        { cause: error },
      );
    }
    const meta = readMetadataOf(plain, snapshot.key);
    if (
      meta.stream !== snapshot.stream || meta.shardId !== snapshot.shardId ||
      meta.sequenceNumber !== snapshot.sequenceNumber ||
      meta.final !== snapshot.final
    ) {
      throw new SnapshotIntegrityError(
        snapshot.key,
        `Cannot use snapshot as its contents are of ${meta.stream}/${meta.shardId} at ${meta.sequenceNumber}: current value is "${snapshot.key}"`,
      );
    }
    await Deno.rename(plain, target);
    return meta;
  } finally {
    await Deno.remove(stored).catch(() => {});
    await Deno.remove(plain).catch(() => {});
  }
}

/**
 * Reads the streambolt metadata of a local SQLite file.
 *
 * @throws {SnapshotIntegrityError} Naming `key`, when the file does not open as SQLite or has
 * no metadata.
 */
export function readMetadataOf(file: string, key: string): SnapshotMetadata {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file, { readOnly: true });
    const meta = readSnapshotMetadata(db);
    if (meta) return meta;
  } catch (error) {
    throw new SnapshotIntegrityError(
      key,
      `Cannot open snapshot as SQLite (${(error as Error).message}): current value is "${key}"`,
      { cause: error },
    );
  } finally {
    db?.close();
  }
  throw new SnapshotIntegrityError(
    key,
    `Cannot use snapshot as it has no streambolt metadata: current value is "${key}"`,
  );
}
