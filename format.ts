/**
 * streambolt's own reading and writing of the storage format that `docs/format.md`
 * specifies: snapshot keys ({@linkcode snapshotKey}, {@linkcode parseSnapshotKey}), the
 * order of sequence numbers and of a shard's snapshots ({@linkcode compareSequenceNumbers},
 * {@linkcode compareSnapshots}), and the metadata table every snapshot database carries
 * ({@linkcode META_TABLE}, {@linkcode readSnapshotMetadata}, {@linkcode FORMAT_VERSION}).
 * For tools that look at a store or a snapshot file directly; producing and consuming need
 * none of it.
 *
 * @example Read a key and a downloaded snapshot's metadata
 * ```ts ignore
 * import { DatabaseSync } from "node:sqlite";
 * import { parseSnapshotKey, readSnapshotMetadata } from "@streambolt/streambolt/format";
 *
 * const parts = parseSnapshotKey("orders/shardId-000000000000/42.sqlite.zst");
 * console.log(parts?.kind, parts?.sequenceNumber); // full 42
 *
 * const db = new DatabaseSync("./local/42.sqlite", { readOnly: true });
 * const meta = readSnapshotMetadata(db); // undefined when the file is not a snapshot
 * console.log(meta?.stream, meta?.shardId, meta?.sequenceNumber, meta?.final);
 * db.close();
 * ```
 *
 * @module
 */
export {
  compareSequenceNumbers,
  compareSnapshots,
  parseSnapshotKey,
  snapshotKey,
  type SnapshotKeyParts,
} from "./src/snapshot_key.ts";
export { FORMAT_VERSION, META_TABLE, readSnapshotMetadata } from "./src/metadata.ts";
