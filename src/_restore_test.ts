import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { KinesisClientLike } from "./aws_client.ts";
import { encodeDelta, fetchDelta } from "./_delta.ts";
import { SnapshotIntegrityError } from "./errors.ts";
import { listSnapshots, ShardSnapshotFinder } from "./finder.ts";
import { kvGenerator } from "./generators/kv.ts";
import { META_TABLE } from "./metadata.ts";
import type { ShardRecord } from "./records.ts";
import { scriptedSource } from "./scripted_source.ts";
import { ShardSnapshotter } from "./shard_snapshotter.ts";
import type { Snapshot } from "./snapshot_key.ts";
import { FileSnapshotStore } from "./store/file_store.ts";

const STREAM = "restore-fail";
const SHARD = "shardId-000000000000";
const ALL_KEYS = { startingHashKey: "0", endingHashKey: String(2n ** 128n - 1n) };
/** Never called: every record comes from the source. */
const NO_KINESIS = {} as KinesisClientLike;

/** Keys of the shard: their values fill more pages than SQLite's default cache holds, so a
 * failed delta has written pages to the file before it fails. */
const KEYS = 4_000;

/** Records 1..count over KEYS keys, each record a new value (~1 KB) of its key. */
function records(count: number): ShardRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    sequenceNumber: String(i + 1),
    partitionKey: `k${i % KEYS}`,
    data: new TextEncoder().encode(`value ${i} `.repeat(100)),
  }));
}

/** A digest of every row of every table: two files hold the same point when these are equal. */
function dump(file: string): string {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const tables = db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    ).all() as Array<{ name: string }>;
    const hash = createHash("sha256");
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}" ORDER BY 1, 2`).iterate()) {
        hash.update(JSON.stringify(row, (_, v) => v instanceof Uint8Array ? [...v] : v));
      }
    }
    return hash.digest("hex");
  } finally {
    db.close();
  }
}

/** The files in a consumer's directory of the shard. */
async function filesOf(localPath: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(localPath, STREAM, SHARD))) names.push(e.name);
  return names.sort();
}

/**
 * Replaces a stored delta by one that verifies (checksum, header, schema) but whose patchset
 * conflicts with its base only after it changed the rows of its first table: every row of
 * `kv`, then the metadata of the point it reaches as a row inserted where the base has one.
 */
async function replaceWithConflictingDelta(
  store: FileSnapshotStore,
  delta: Snapshot,
  baseFile: string,
  scratch: string,
): Promise<void> {
  const real = await fetchDelta(store, delta, join(scratch, "real"));
  const copy = join(scratch, "base-copy.sqlite");
  await Deno.copyFile(baseFile, copy);
  const db = new DatabaseSync(copy);
  db.exec(`CREATE TEMP TABLE meta AS SELECT * FROM ${META_TABLE}; DELETE FROM ${META_TABLE}`);
  const session = db.createSession();
  db.exec("UPDATE kv SET value = X'00'");
  db.exec(`INSERT INTO ${META_TABLE} SELECT * FROM temp.meta`);
  db.prepare(`UPDATE ${META_TABLE} SET sequence_number = ?`).run(delta.sequenceNumber);
  const patchset = session.patchset();
  db.close();
  const encoded = encodeDelta({ header: real.header, patchset }, delta.encoding);
  const { metadata } = await store.download(delta.key, join(scratch, "old"));
  await store.delete([delta.key]);
  const file = join(scratch, "conflicting");
  await Deno.writeFile(file, encoded.bytes);
  await store.put(delta.key, file, { metadata: { ...metadata, sha256: encoded.sha256 } });
}

/** The error of a delta that verified but did not apply. */
const conflicts = (error: unknown) =>
  error instanceof SnapshotIntegrityError && /a change conflicts/.test(error.message);

Deno.test("a delta that fails to apply leaves no restored file, and a refreshed local point as it was", async () => {
  const root = await Deno.makeTempDir({ prefix: "streambolt-restore-fail-" });
  try {
    const store = new FileSnapshotStore({ root: join(root, "store") });
    const produce = (count: number) =>
      new ShardSnapshotter({
        stream: STREAM,
        shardId: SHARD,
        kinesis: NO_KINESIS,
        store,
        localPath: join(root, "producer"),
        generator: kvGenerator(),
        hashKeyRange: ALL_KEYS,
        chain: { maxDeltas: 1_000, maxRestoreRatio: Infinity },
        source: scriptedSource(records(count)),
      }).snapshotShard();
    await produce(KEYS);
    const second = await produce(2 * KEYS);
    assert.equal(second.kind, "delta");
    const finder = (localPath: string) =>
      new ShardSnapshotFinder({ store, stream: STREAM, shardId: SHARD, localPath });
    const refreshing = join(root, "refreshing");
    const point2 = await finder(refreshing).downloadLatestSnapshot();
    assert.equal(point2?.sequenceNumber, String(2 * KEYS));
    const atPoint2 = dump(point2.localFile!);

    const third = await produce(3 * KEYS);
    assert.equal(third.kind, "delta");
    await replaceWithConflictingDelta(store, third, point2.localFile!, root);

    // A bootstrap: a full snapshot and two deltas, the second of which fails.
    const fresh = join(root, "fresh");
    await assert.rejects(finder(fresh).downloadLatestSnapshot(), conflicts);
    assert.deepEqual(await filesOf(fresh), []);
    const fallback = await finder(fresh).downloadLatestSnapshot({ fallback: true });
    assert.equal(fallback?.sequenceNumber, String(2 * KEYS));
    assert.equal(dump(fallback.localFile!), atPoint2);

    // A refresh of the local point by the failing delta: the point is put back as it was.
    await assert.rejects(
      finder(refreshing).downloadLatestSnapshot({ refresh: true }),
      conflicts,
    );
    assert.deepEqual(await filesOf(refreshing), [`${2 * KEYS}.sqlite`]);
    assert.equal(dump(join(refreshing, STREAM, SHARD, `${2 * KEYS}.sqlite`)), atPoint2);
    const kept = await finder(refreshing).downloadLatestSnapshot({ refresh: true, fallback: true });
    assert.equal(kept?.sequenceNumber, String(2 * KEYS));
    assert.equal(dump(kept.localFile!), atPoint2);
    assert.equal((await listSnapshots(store, STREAM)).length, 3);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
