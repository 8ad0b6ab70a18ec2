/**
 * `streambolt status` and `streamStatus()` against one kinesis-local and one fauxqs shared by
 * the cases (each case has its own stream, store and working directory).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SplitShardCommand, waitUntilStreamExists } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  listSnapshots,
  listStreamShards,
  S3SnapshotStore,
  type SnapshotStore,
  streamStatus,
} from "../mod.ts";
import { type CliResult, runCli } from "./support/cli.ts";
import { countByShard, makeRecords, putRecords, type PutResult } from "./support/data.ts";
import { createBucket, createStream } from "./support/emulators.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesisAndS3("streambolt-status-");
Deno.test.afterAll(() => emulators.stop());

const HOUR_MS = 3_600_000;
/** The --max-age of the first case: records must wait longer than this to count. */
const MAX_AGE_MS = 5_000;

/** A shard's entry in `status --json`. */
interface ShardJson {
  shardId: string;
  closed: boolean;
  parentShards: string[];
  sequenceNumber: string | null;
  kind: string | null;
  final: boolean;
  key: string | null;
  size: number | null;
  lastModified: string | null;
  ageMs: number | null;
  chainLength: number | null;
  recordsApplied: number | null;
  recordsSkipped: number | null;
  acceptedGaps: number | null;
  lastArrivalAt: string | null;
  trailMs: number | null;
  recordsWaiting: boolean | null;
  waitingSince: string | null;
  retentionAtRisk: boolean;
  problems: string[];
}

/** `status --json`. */
interface StatusJson {
  stream: string;
  store: string;
  checkedAt: string;
  ok: boolean;
  maxAgeMs: number;
  retentionHours: number;
  shards: ShardJson[];
}

/** A case's own stream with records, and a working directory whose `snaps` is the store. */
interface Setup {
  stream: string;
  shards: string[];
  put: PutResult[];
  cwd: string;
  /** The file store the CLI writes with `--store snaps`. */
  store: FileSnapshotStore;
  cli(...args: string[]): Promise<CliResult>;
}

async function setup(shardCount: number, records: number): Promise<Setup> {
  const { kinesis, writer, temp, env } = await emulators.get();
  const stream = uniqueName("status");
  await createStream(kinesis, stream, shardCount);
  const shards = (await listStreamShards(kinesis, stream)).map((s) => s.shardId);
  const put = await putRecords(writer, stream, makeRecords(records, { keys: 90, seed: 5 }));
  const cwd = await Deno.makeTempDir({ dir: temp });
  return {
    stream,
    shards,
    put,
    cwd,
    store: new FileSnapshotStore({ root: join(cwd, "snaps") }),
    cli: (...args) => runCli(args, { cwd, env }),
  };
}

function ok(result: CliResult): CliResult {
  assert.equal(
    result.code,
    0,
    `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
  );
  return result;
}

/** Moves the modification time of every object of a shard `ms` into the past. */
async function age(s: Setup, shardId: string, ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  for (const snapshot of await listSnapshots(s.store, s.stream, { shardId })) {
    await Deno.utime(join(s.store.root, snapshot.key), when, when);
  }
}

function byShard(status: StatusJson): Map<string, ShardJson> {
  return new Map(status.shards.map((s) => [s.shardId, s]));
}

Deno.test(
  "streambolt status fails naming a stale and a missing shard, and passes a fresh one",
  SHARES_EMULATORS,
  async () => {
    const s = await setup(3, 300);
    const [fresh, stale, missing] = s.shards;
    const { writer } = await emulators.get();
    ok(await s.cli("snapshot", "--stream", s.stream, "--store", "snaps", "-q", "--shard", stale));
    // Records the stale shard's snapshot lacks, older than --max-age by the time of the check.
    const more = await putRecords(writer, s.stream, makeRecords(150, { keys: 90, seed: 8 }));
    await new Promise((r) => setTimeout(r, MAX_AGE_MS + 500));
    ok(await s.cli("snapshot", "--stream", s.stream, "--store", "snaps", "-q", "--shard", fresh));
    await age(s, stale, HOUR_MS);

    const status = (...extra: string[]) =>
      s.cli("status", "--stream", s.stream, "--store", "snaps", "--max-age", "5s", ...extra);
    const result = await status("--json");
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /^streambolt: error: Cannot pass the status check/);
    assert.match(
      lines[0],
      new RegExp(`${stale}'s snapshot is 1h00m old \\(over 5s\\) with records waiting \\d+s`),
    );
    assert.ok(lines[0].includes(`${missing} has no snapshot`), lines[0]);
    assert.ok(!lines[0].includes(fresh), lines[0]);

    const json: StatusJson = JSON.parse(result.stdout);
    assert.equal(json.stream, s.stream);
    assert.equal(json.ok, false);
    assert.equal(json.maxAgeMs, MAX_AGE_MS);
    assert.equal(json.retentionHours, 24);
    assert.ok(json.store.startsWith("file://"));
    assert.deepEqual(json.shards.map((x) => x.shardId), s.shards);
    const counts = countByShard([...s.put, ...more]);
    const before = countByShard(s.put);
    const rows = byShard(json);
    const f = rows.get(fresh)!;
    assert.deepEqual(f.problems, []);
    assert.equal(f.closed, false);
    assert.equal(f.kind, "full");
    assert.equal(f.final, false);
    assert.equal(f.chainLength, 0);
    assert.equal(f.recordsApplied, counts.get(fresh));
    assert.equal(f.recordsSkipped, 0);
    assert.equal(f.acceptedGaps, 0);
    assert.equal(
      f.sequenceNumber,
      more.filter((p) => p.shardId === fresh).at(-1)!.sequenceNumber,
    );
    assert.ok(f.lastArrivalAt !== null && f.trailMs !== null && f.trailMs >= 0);
    assert.ok(f.key?.startsWith(`${s.stream}/${fresh}/`));
    assert.equal(f.retentionAtRisk, false);
    const st = rows.get(stale)!;
    assert.deepEqual(st.problems, ["stale"]);
    assert.ok(st.ageMs! >= HOUR_MS && st.ageMs! < 2 * HOUR_MS, String(st.ageMs));
    assert.equal(st.recordsApplied, before.get(stale));
    assert.equal(st.recordsWaiting, true);
    assert.ok(Date.parse(st.waitingSince!) <= Date.parse(json.checkedAt) - MAX_AGE_MS);
    const m = rows.get(missing)!;
    assert.deepEqual(m.problems, ["missing"]);
    assert.equal(m.sequenceNumber, null);
    assert.equal(m.recordsApplied, null);
    assert.equal(m.retentionAtRisk, false);

    // The table says the same, with the same exit status and error line.
    const table = await status();
    assert.equal(table.code, 1);
    assert.equal(table.stderr.trim().split("\n").length, 1);
    assert.ok(table.stderr.includes(stale) && table.stderr.includes(missing), table.stderr);
    const [header, ...body] = table.stdout.trim().split("\n");
    assert.match(header, /^SHARD\s+STATE\s+SEQUENCE\s+KIND\s+CHAIN\s+AGE\s+APPLIED\s+FINAL/);
    assert.equal(body.length, 3);
    assert.match(
      body[0],
      new RegExp(
        `^${fresh}\\s+open\\s+\\d+\\s+full\\s+-\\s+\\S+\\s+${
          counts.get(fresh)
        }\\s+no\\s+\\S+\\s+ok\\s+ok( \\(idle\\))?$`,
      ),
    );
    assert.match(body[1], /\s1h00m\s.*\sstale$/);
    assert.match(body[2], new RegExp(`^${missing}\\s+open\\s+-.*\\sno snapshot$`));
  },
);

Deno.test(
  "streambolt status passes an idle shard's old snapshot, and counts deltas in the chain",
  SHARES_EMULATORS,
  async () => {
    const s = await setup(2, 200);
    const [first, second] = s.shards;
    ok(await s.cli("snapshot", "--stream", s.stream, "--store", "snaps", "-q"));
    await age(s, first, HOUR_MS);
    // No record waits after it: old, but complete. Kinesis was asked (recordsWaiting false).
    const idle = ok(await s.cli("status", "--stream", s.stream, "--store", "snaps", "--json"));
    assert.equal(idle.stderr, "");
    const idleRow = byShard(JSON.parse(idle.stdout)).get(first)!;
    assert.deepEqual([idleRow.problems, idleRow.recordsWaiting], [[], false]);
    assert.ok(idleRow.ageMs! >= HOUR_MS);
    assert.equal(byShard(JSON.parse(idle.stdout)).get(second)!.recordsWaiting, null, "not asked");
    const table = ok(await s.cli("status", "--stream", s.stream, "--store", "snaps")).stdout;
    assert.match(table, new RegExp(`^${first}\\s.*\\s1h00m\\s.*\\sok \\(idle\\)$`, "m"));

    const { writer } = await emulators.get();
    const more = await putRecords(writer, s.stream, makeRecords(100, { keys: 90, seed: 6 }));
    // Test data is small: the default policy would write a full at every point.
    ok(
      await s.cli(
        "snapshot",
        "--stream",
        s.stream,
        "--store",
        "snaps",
        "-q",
        "--max-restore-ratio",
        "1000",
      ),
    );
    const status: StatusJson = JSON.parse(
      ok(await s.cli("status", "--stream", s.stream, "--store", "snaps", "--json")).stdout,
    );
    assert.equal(status.ok, true);
    const counts = countByShard([...s.put, ...more]);
    for (const shardId of [first, second]) {
      const row = byShard(status).get(shardId)!;
      assert.deepEqual(row.problems, []);
      assert.equal(row.kind, "delta");
      assert.equal(row.chainLength, 1);
      assert.equal(row.recordsApplied, counts.get(shardId), "applied across the lineage");
    }
  },
);

Deno.test(
  "streambolt status shows a shard closed by a split as final, and does not fail on it",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer } = await emulators.get();
    const s = await setup(1, 150);
    const [parent] = s.shards;
    ok(await s.cli("snapshot", "--stream", s.stream, "--store", "snaps", "-q"));
    await kinesis.send(
      new SplitShardCommand({
        StreamName: s.stream,
        ShardToSplit: parent,
        NewStartingHashKey: (2n ** 127n).toString(),
      }),
    );
    await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60, minDelay: 1 }, {
      StreamName: s.stream,
    });
    await putRecords(writer, s.stream, makeRecords(100, { keys: 90, seed: 7 }));
    ok(await s.cli("snapshot", "--stream", s.stream, "--store", "snaps", "-q"));
    // The parent's snapshot is old; closed and final, it still passes.
    await age(s, parent, 3 * HOUR_MS);

    const status: StatusJson = JSON.parse(
      ok(await s.cli("status", "--stream", s.stream, "--store", "snaps", "--json")).stdout,
    );
    assert.equal(status.shards.length, 3);
    const closed = byShard(status).get(parent)!;
    assert.equal(closed.closed, true);
    assert.equal(closed.final, true);
    assert.equal(closed.trailMs, null, "a final point trails nothing");
    assert.equal(closed.retentionAtRisk, false);
    assert.deepEqual(closed.problems, []);
    assert.equal(closed.recordsApplied, countByShard(s.put).get(parent));
    for (const child of status.shards.filter((x) => x.shardId !== parent)) {
      assert.deepEqual(child.parentShards, [parent]);
      assert.equal(child.closed, false);
      assert.deepEqual(child.problems, []);
    }
    const table = ok(await s.cli("status", "--stream", s.stream, "--store", "snaps")).stdout;
    assert.match(
      table,
      new RegExp(
        `^${parent}\\s+closed\\s+\\d+\\s+full\\s+-\\s+3h00m\\s+\\d+\\s+yes\\s+-\\s+-\\s+ok$`,
        "m",
      ),
    );
  },
);

/** Publishes a stand-in object with point metadata (status reads metadata, never bytes). */
async function publish(
  store: SnapshotStore,
  key: string,
  metadata: Record<string, string>,
): Promise<void> {
  const { temp } = await emulators.get();
  const file = join(temp, crypto.randomUUID());
  await Deno.writeFile(file, new Uint8Array([1]));
  await store.put(key, file, { metadata });
  await Deno.remove(file);
}

Deno.test(
  "streambolt status fails, with a warning line, when a snapshot trails past half the retention",
  SHARES_EMULATORS,
  async () => {
    const s = await setup(2, 0);
    const [behind, current] = s.shards;
    const arrived = (ms: number) => new Date(Date.now() - ms).toISOString();
    // Both objects were just written; one's last record arrived 13 h ago (retention: 24 h).
    await publish(s.store, `${s.stream}/${behind}/100.sqlite.zst`, {
      "records-applied": "5",
      "last-arrival-at": arrived(13 * HOUR_MS),
    });
    await publish(s.store, `${s.stream}/${current}/200.sqlite.zst`, {
      "records-applied": "9",
      "last-arrival-at": arrived(11 * HOUR_MS),
    });
    const result = await s.cli("status", "--stream", s.stream, "--store", "snaps", "--json");
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 2, result.stderr);
    assert.match(lines[0], /level=warn msg="snapshot trails the shard by more than half/);
    assert.ok(lines[0].includes(`shard=${behind}`) && lines[0].includes("retentionHours=24"));
    assert.match(lines[1], /^streambolt: error: /);
    assert.ok(
      lines[1].includes(`${behind}'s snapshot trails it by 13h00m (over half the 24 h retention)`),
      lines[1],
    );
    assert.ok(!lines[1].includes(current), lines[1]);
    const rows = byShard(JSON.parse(result.stdout));
    assert.equal(rows.get(behind)!.retentionAtRisk, true);
    assert.deepEqual(rows.get(behind)!.problems, ["retention"]);
    assert.ok(rows.get(behind)!.trailMs! >= 13 * HOUR_MS);
    assert.equal(rows.get(current)!.retentionAtRisk, false);
    assert.deepEqual(rows.get(current)!.problems, []);
    const table = await s.cli("status", "--stream", s.stream, "--store", "snaps");
    assert.match(
      table.stdout,
      new RegExp(`^${behind}\\s.*\\s13h00m\\s+at risk\\s+retention at risk$`, "m"),
    );
  },
);

Deno.test(
  "streamStatus() reads point metadata from S3 with HEAD, and asks Kinesis what waits",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, s3 } = await emulators.get();
    const s = await setup(2, 120);
    const bucket = uniqueName("status-bucket");
    await createBucket(s3, bucket);
    const store = new S3SnapshotStore({ client: s3, bucket, prefix: "snaps" });
    ok(await s.cli("snapshot", "--stream", s.stream, "--store", `s3://${bucket}/snaps`, "-q"));
    const counts = countByShard(s.put);
    const now = await streamStatus({ kinesis, store, stream: s.stream });
    assert.equal(now.ok, true);
    for (const row of now.shards) {
      assert.equal(row.recordsApplied, counts.get(row.shardId));
      assert.ok(row.lastArrivalAt instanceof Date && row.trailMs !== undefined);
      assert.ok(row.size! > 0 && row.lastModified instanceof Date);
    }
    const in20Minutes = () =>
      streamStatus({ kinesis, store, stream: s.stream, now: new Date(Date.now() + 20 * 60_000) });
    // Old by then, but idle: nothing waits after either point.
    const idle = await in20Minutes();
    assert.equal(idle.ok, true);
    assert.deepEqual(idle.shards.map((r) => r.recordsWaiting), [false, false]);
    // Records that would have waited 20 minutes: stale.
    const { writer } = await emulators.get();
    await putRecords(writer, s.stream, makeRecords(60, { keys: 90, seed: 9 }));
    const later = await in20Minutes();
    assert.equal(later.ok, false);
    assert.deepEqual(later.shards.map((r) => r.problems), [["stale"], ["stale"]]);
    for (const row of later.shards) {
      assert.equal(row.recordsWaiting, true);
      assert.ok(row.waitingSince instanceof Date);
    }
    // Now, they are young: they wait, but not longer than maxAgeMs, and the points are new.
    assert.equal((await streamStatus({ kinesis, store, stream: s.stream })).ok, true);
    // A point older than maxAgeMs whose first waiting record is younger: the producer has not
    // had maxAgeMs to take it in yet, so it passes.
    const [row] = later.shards;
    const at = row.waitingSince!.getTime() + 1_000;
    const young = await streamStatus({
      kinesis,
      store,
      stream: s.stream,
      now: new Date(at),
      maxAgeMs: at - row.lastModified!.getTime() - 1,
    });
    assert.deepEqual([young.shards[0].recordsWaiting, young.shards[0].problems], [true, []]);
    // A custom store without head(): what only metadata tells is unknown; the check still runs.
    const noHead: SnapshotStore = {
      url: store.url,
      list: (prefix, options) => store.list(prefix, options),
      put: (key, file, options) => store.put(key, file, options),
      download: (key, file, options) => store.download(key, file, options),
      delete: (keys, options) => store.delete(keys, options),
    };
    const plain = await streamStatus({ kinesis, store: noHead, stream: s.stream });
    assert.equal(plain.ok, true);
    for (const row of plain.shards) {
      assert.equal(row.recordsApplied, undefined);
      assert.equal(row.lastArrivalAt, undefined);
      assert.ok(row.ageMs !== undefined && row.sequenceNumber !== undefined);
    }
  },
);

Deno.test(
  "streambolt status rejects bad input with one line naming the value and exit 2",
  SHARES_EMULATORS,
  async () => {
    const s = await setup(1, 0);
    const usage = (result: CliResult, mention: string) => {
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0], /^streambolt: error: /);
      assert.ok(lines[0].includes(mention), lines[0]);
      assert.equal(result.stdout, "");
    };
    usage(
      await s.cli("status", "--stream", s.stream, "--store", "snaps", "--max-age", "5x"),
      '"5x"',
    );
    usage(await s.cli("status", "--store", "snaps"), "--stream");
    usage(await s.cli("status", "--stream", s.stream), "--store");
    usage(await s.cli("status", "--stream", "bad/name", "--store", "snaps"), '"bad/name"');
    usage(
      await s.cli("status", "--stream", "no-such-stream", "--store", "snaps"),
      '"no-such-stream"',
    );
    usage(
      await s.cli("status", "--stream", s.stream, "--store", "snaps", "--log-format", "xml"),
      '"xml"',
    );
    assert.match(ok(await s.cli("status", "--help")).stdout, /^Usage: streambolt status/);
  },
);
