import assert from "node:assert/strict";
import { FakeKinesis } from "../tests/support/fake_kinesis.ts";
import { kvGenerator } from "./generators/kv.ts";
import { type AppliedDetail, LiveReplica } from "./live_replica.ts";
import type { SnapshotGenerator } from "./generator.ts";

async function replicaOf(fake: FakeKinesis, generator: SnapshotGenerator = kvGenerator()) {
  return new LiveReplica({
    kinesis: fake.client,
    stream: "orders",
    shardId: "shardId-000000000000",
    localPath: await Deno.makeTempDir({ prefix: "streambolt-replica-" }),
    generator,
    pollIntervalMs: 200,
  });
}

/** Resolves with the first `applied` event that reaches `sequenceNumber`. */
function appliedUpTo(replica: LiveReplica, sequenceNumber: string): Promise<AppliedDetail> {
  return new Promise((resolve) => {
    const listener = (event: CustomEvent<AppliedDetail>) => {
      if (BigInt(event.detail.sequenceNumber) < BigInt(sequenceNumber)) return;
      replica.removeEventListener("applied", listener);
      resolve(event.detail);
    };
    replica.addEventListener("applied", listener);
  });
}

Deno.test("LiveReplica.query() calls may overlap, each in its own read transaction", async () => {
  const fake = new FakeKinesis();
  const seqs = fake.put([{ partitionKey: "a", data: "1" }, { partitionKey: "b", data: "2" }]);
  await using replica = await replicaOf(fake);
  const applied = appliedUpTo(replica, seqs[1]);
  await replica.start();
  await applied;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const count = (db: { prepare(sql: string): { get(): unknown } }) =>
    (db.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n;
  // The first query holds its transaction open across an await while the second one runs.
  const first = replica.query(async (db) => {
    const before = count(db);
    await gate;
    return [before, count(db)];
  });
  const second = await replica.query((db) => count(db));
  release();
  assert.equal(second, 2);
  assert.deepEqual(await first, [2, 2]);
  // A third, after both, still works on a reused connection.
  assert.equal(await replica.query((db) => count(db)), 2);
});

Deno.test("LiveReplica.start() that fails closes what it opened", async () => {
  const fake = new FakeKinesis();
  const generator: SnapshotGenerator = {
    onStart() {
      throw new Error("cannot start");
    },
    onRecords() {},
  };
  const replica = await replicaOf(fake, generator);
  await assert.rejects(replica.start(), /cannot start/);
  assert.equal(replica.state, "failed");
  // The database is closed: its WAL files are gone (an open connection keeps them), and the
  // file can be removed and opened exclusively by someone else.
  for (const suffix of ["-wal", "-shm"]) {
    await assert.rejects(Deno.stat(replica.file + suffix), Deno.errors.NotFound);
  }
  await replica.stop();
  assert.equal(replica.state, "failed");
  await assert.rejects(replica.query(() => 1), /not started/);
});

Deno.test("LiveReplica dispatches typed events and stops at the end of an await using scope", async () => {
  const fake = new FakeKinesis();
  const seqs = fake.put([{ partitionKey: "a", data: "1" }]);
  let replica: LiveReplica;
  {
    await using scoped = await replicaOf(fake);
    replica = scoped;
    const applied = appliedUpTo(scoped, seqs[0]);
    await scoped.start();
    const detail = await applied;
    assert.equal(detail.records, 1);
    assert.equal(detail.sequenceNumber, seqs[0]);
    assert.equal(scoped.state, "running");
  }
  assert.equal(replica.state, "stopped");
});
