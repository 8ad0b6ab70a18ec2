/**
 * Helpers to look inside snapshot databases in tests.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { SnapshotMetadata } from "../../mod.ts";
import { readSnapshotMetadata } from "../../format.ts";

/** The `log` table's sequence numbers and the metadata of a snapshot file. */
export function readLogSnapshot(file: string): {
  sequenceNumbers: string[];
  meta: SnapshotMetadata;
} {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare("SELECT sequence_number FROM log").all() as Array<
      { sequence_number: string }
    >;
    return {
      sequenceNumbers: rows.map((r) => r.sequence_number),
      meta: readSnapshotMetadata(db)!,
    };
  } finally {
    db.close();
  }
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
