import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { InvalidArgumentError, SnapshotGeneratorError, SnapshotIntegrityError } from "./errors.ts";
import type { SnapshotGenerator } from "./generator.ts";
import { logGenerator } from "./generators/log.ts";
import { kvGenerator } from "./generators/kv.ts";
import type { RecordBatch, ShardPage, ShardRecord } from "./records.ts";
import { SnapshotDb, type SnapshotDbOptions } from "./database.ts";

const SHARD = "shardId-000000000000";

function page(from: number, count: number, extra: Partial<ShardPage> = {}): ShardPage {
  const records: ShardRecord[] = [];
  for (let i = 0; i < count; i++) {
    records.push({
      sequenceNumber: String(from + i),
      partitionKey: `k${(from + i) % 7}`,
      data: new TextEncoder().encode(`v${from + i}`),
    });
  }
  return {
    shardId: SHARD,
    records,
    millisBehindLatest: 0,
    fullPage: false,
    closed: false,
    childShards: [],
    ...extra,
  };
}

async function openDb(
  generator: SnapshotGenerator,
  extra: Partial<SnapshotDbOptions> = {},
): Promise<SnapshotDb> {
  const dir = await Deno.makeTempDir({ prefix: "streambolt-db-" });
  return await SnapshotDb.open(join(dir, "snapshot.sqlite"), {
    stream: "orders",
    shardId: SHARD,
    generator,
    ...extra,
  });
}

function count(db: SnapshotDb, table: string): number {
  return (db.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** A generator that fails on one record, walking the batch in a given style. */
function failingOn(
  bad: string,
  walk: (batch: RecordBatch, visit: (r: ShardRecord) => void) => void,
) {
  const inner = logGenerator();
  return {
    onStart: inner.onStart,
    onRecords(db: DatabaseSync, batch: RecordBatch) {
      walk(batch, (r) => {
        if (r.sequenceNumber === bad) throw new Error(`bad payload ${r.sequenceNumber}`);
        inner.onRecords(db, { ...batch, records: [r] });
      });
    },
  } satisfies SnapshotGenerator;
}

Deno.test("SnapshotDb.applyPage() commits the records and their sequence number together", async () => {
  const db = await openDb(logGenerator());
  try {
    assert.equal(db.sequenceNumber, "0");
    assert.equal(await db.applyPage(page(100, 5)), 5);
    assert.equal(db.sequenceNumber, "104");
    const meta = db.metadata();
    assert.equal(meta.sequenceNumber, "104");
    assert.equal(meta.recordsApplied, 5);
    assert.equal(count(db, "log"), 5);
    assert.equal(await db.applyPage(page(105, 0)), 0, "an empty page applies nothing");
    assert.equal(db.metadata().sequenceNumber, "104");
  } finally {
    db.close();
  }
});

Deno.test("SnapshotDb.applyPage() names the exact failing record whatever the iteration style", async (t) => {
  const styles: Record<string, (b: RecordBatch, visit: (r: ShardRecord) => void) => void> = {
    "for...of": (b, visit) => {
      for (const r of b.records) visit(r);
    },
    "forEach": (b, visit) => b.records.forEach(visit),
    "index loop": (b, visit) => {
      for (let i = 0; i < b.records.length; i++) visit(b.records[i]);
    },
    "entries()": (b, visit) => {
      for (const [, r] of b.records.entries()) visit(r);
    },
    "map first, then apply": (b, visit) => {
      const copies = b.records.map((r) => ({ ...r }));
      for (const r of copies) visit(r);
    },
  };
  for (const [style, walk] of Object.entries(styles)) {
    await t.step(style, async () => {
      const db = await openDb(failingOn("203", walk));
      try {
        await db.applyPage(page(100, 3));
        await assert.rejects(db.applyPage(page(200, 6)), (error: Error) => {
          assert.ok(error instanceof SnapshotGeneratorError);
          assert.equal(error.sequenceNumber, "203");
          assert.equal(error.shardId, SHARD);
          assert.match(error.message, /sequence number 203: bad payload 203/);
          return true;
        });
        // The failed page is rolled back whole: rows and position as before it.
        assert.equal(count(db, "log"), 3);
        assert.equal(db.sequenceNumber, "102");
        assert.equal(db.metadata().sequenceNumber, "102");
      } finally {
        db.close();
      }
    });
  }
});

Deno.test("SnapshotDb.applyPage() skips and counts bad records when asked to", async () => {
  const skipped: string[] = [];
  const db = await openDb(failingOn("202", (b, visit) => b.records.forEach(visit)), {
    onSkip: (record) => skipped.push(record.sequenceNumber),
  });
  try {
    assert.equal(await db.applyPage(page(200, 5)), 4);
    assert.deepEqual(skipped, ["202"]);
    const meta = db.metadata();
    assert.equal(meta.sequenceNumber, "204", "the position moves past the skipped record");
    assert.equal(meta.recordsApplied, 4);
    assert.equal(meta.recordsSkipped, 1);
    assert.equal(count(db, "log"), 4);
  } finally {
    db.close();
  }
});

Deno.test("SnapshotDb.applyPage() marks a closed shard final with its last records", async () => {
  const children = [{ shardId: "shardId-000000000002", parentShards: [SHARD] }];
  const db = await openDb(kvGenerator());
  try {
    await db.applyPage(page(10, 3, { closed: true, childShards: children }));
    assert.equal(db.final, true);
    const meta = db.metadata();
    assert.equal(meta.final, true);
    assert.equal(meta.sequenceNumber, "12");
    assert.deepEqual(meta.childShards, children);
  } finally {
    db.close();
  }
});

Deno.test("SnapshotDb.open() bootstraps at the generator's sequence number and runs onStart", async () => {
  const calls: string[] = [];
  const db = await openDb({
    bootstrap(db) {
      db.exec("CREATE TABLE seeded (id INTEGER PRIMARY KEY)");
      calls.push("bootstrap");
      return "77";
    },
    onStart() {
      calls.push("onStart");
    },
    onRecords() {},
  });
  try {
    assert.deepEqual(calls, ["bootstrap", "onStart"]);
    assert.equal(db.sequenceNumber, "77");
    assert.equal(db.metadata().stream, "orders");
    assert.equal(
      db.db.prepare("PRAGMA auto_vacuum").get()?.auto_vacuum,
      2,
      "incremental auto-vacuum, so compact() needs no VACUUM",
    );
  } finally {
    db.close();
  }
});

Deno.test("SnapshotDb.open() seeds a child from its parents through onParents", async () => {
  const parent = await openDb(kvGenerator());
  await parent.applyPage(page(1, 20));
  const metadata = parent.metadata();
  parent.close();
  const child = await openDb(kvGenerator(), {
    shardId: "shardId-000000000001",
    seed: {
      parents: [{
        shardId: SHARD,
        file: parent.file,
        metadata,
      }],
      hashKeyRange: { startingHashKey: "0", endingHashKey: String(2n ** 128n - 1n) },
    },
  });
  try {
    assert.equal(count(child, "kv"), 7, "every key of the parent, whose range is the child's");
    assert.deepEqual(child.metadata().parentShards, [SHARD]);
    assert.equal(child.sequenceNumber, "0", "a child reads its own shard from the start");
  } finally {
    child.close();
  }
});

Deno.test("SnapshotDb.open() refuses a downloaded base without metadata", async () => {
  const dir = await Deno.makeTempDir({ prefix: "streambolt-db-" });
  const file = join(dir, "base.sqlite");
  const plain = new DatabaseSync(file);
  plain.exec("CREATE TABLE t (x)");
  plain.close();
  await assert.rejects(
    SnapshotDb.open(file, {
      stream: "orders",
      shardId: SHARD,
      generator: logGenerator(),
      baseKey: "orders/shardId-000000000000/5.sqlite.zst",
    }),
    (error: Error) =>
      error instanceof SnapshotIntegrityError && /has no metadata/.test(error.message),
  );
});

Deno.test("SnapshotDb opens each kind of database with its own journal and sync settings", async () => {
  const settings = (db: SnapshotDb) => ({
    journal: (db.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
    sync: (db.db.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous,
  });
  const work = await openDb(logGenerator());
  await work.applyPage(page(1, 3));
  work.close();
  const replica = await openDb(logGenerator(), { durability: "replica" });
  try {
    assert.deepEqual(settings(replica), { journal: "wal", sync: 1 });
  } finally {
    replica.close();
  }
  const points = [["replica", "wal"], ["restore", "memory"], ["scratch", "off"]] as const;
  for (const [durability, expected] of points) {
    const point = SnapshotDb.openPoint(work.file, durability);
    try {
      assert.deepEqual(settings(point), {
        journal: expected,
        sync: durability === "replica" ? 1 : 0,
      });
      assert.equal(point.sequenceNumber, "3", "the point the file holds");
    } finally {
      point.close();
    }
  }
});

Deno.test("SnapshotDb.openPoint() refuses a file without metadata and applies no records", async () => {
  const dir = await Deno.makeTempDir({ prefix: "streambolt-db-" });
  const file = join(dir, "plain.sqlite");
  const plain = new DatabaseSync(file);
  plain.exec("CREATE TABLE t (x)");
  plain.close();
  assert.throws(
    () => SnapshotDb.openPoint(file, "restore"),
    (error: Error) => error instanceof SnapshotIntegrityError && error.message.includes(file),
  );
  const work = await openDb(logGenerator());
  work.close();
  const point = SnapshotDb.openPoint(work.file, "restore");
  try {
    await assert.rejects(point.applyPage(page(1, 1)), InvalidArgumentError);
  } finally {
    point.close();
  }
});
