import assert from "node:assert/strict";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { standsAsPoint, startFlush } from "./_local_copy.ts";
import type { SnapshotGenerator } from "./generator.ts";
import { logGenerator } from "./generators/log.ts";
import { SnapshotDb } from "./database.ts";

/** The log generator, with `onStart` extended by `more`. */
function withStart(more: (db: DatabaseSync) => void): SnapshotGenerator {
  const log = logGenerator();
  return {
    onStart(db) {
      log.onStart!(db);
      more(db);
    },
    onRecords: log.onRecords,
  };
}

/** Records an accepted gap. */
const gap = (db: SnapshotDb) =>
  db.recordGap({
    after: "0",
    lastArrivalAt: new Date(0).toISOString(),
    retentionHours: 24,
    acceptedAt: new Date().toISOString(),
  });
/** Ways a reopened point may be changed, and whether it then still stands as its copy. */
const CASES: Array<{
  name: string;
  generator: SnapshotGenerator;
  change?: (db: SnapshotDb) => Promise<void>;
  expected: boolean;
}> = [
  { name: "the same generator", generator: logGenerator(), expected: true },
  {
    name: "onStart inserts a row",
    generator: withStart((db) =>
      db.exec(
        "CREATE TABLE IF NOT EXISTS c (k INTEGER PRIMARY KEY); INSERT OR IGNORE INTO c VALUES (1)",
      )
    ),
    expected: false,
  },
  {
    name: "onStart creates an index",
    generator: withStart((db) =>
      db.exec("CREATE INDEX IF NOT EXISTS by_key ON log (partition_key)")
    ),
    expected: false,
  },
  { name: "a gap is recorded", generator: logGenerator(), change: gap, expected: false },
];

Deno.test("standsAsPoint() is true only when nothing changed the reopened point", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "streambolt-copy-" });
  const file = join(dir, "snapshot.sqlite");
  const open = (generator: SnapshotGenerator) =>
    SnapshotDb.open(file, {
      stream: "orders",
      shardId: "shardId-000000000000",
      generator,
      baseKey: "orders/shardId-000000000000/0.sqlite.zst",
      trackChanges: true,
    });
  (await SnapshotDb.open(file, {
    stream: "orders",
    shardId: "shardId-000000000000",
    generator: logGenerator(),
  })).close();
  for (const { name, generator, change, expected } of CASES) {
    await t.step(name, async () => {
      const db = await open(generator);
      try {
        await change?.(db);
        assert.equal(standsAsPoint(db), expected);
      } finally {
        db.close();
      }
    });
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("startFlush() leaves the file as it was, and never rejects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "streambolt-flush-" });
  try {
    const file = join(dir, "snapshot.sqlite");
    const bytes = crypto.getRandomValues(new Uint8Array(64 * 1024));
    await Deno.writeFile(file, bytes);
    await startFlush(file);
    assert.deepEqual(await Deno.readFile(file), bytes);
    // A file gone (or not writable) is left to the fsync that counts: nothing to flush here.
    await startFlush(join(dir, "gone.sqlite"));
    await startFlush(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
