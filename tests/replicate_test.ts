/**
 * `streambolt replicate` against the emulators, read by a reader nobody here wrote: Python 3's
 * standard `sqlite3` module in a process of its own (tests/support/replica_reader.py), polling
 * the replica file while points are applied. Skipped, with a message, where python3 is missing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SplitShardCommand, waitUntilStreamExists } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  kvGenerator,
  listStreamShards,
  ShardSnapshotter,
  type Snapshot,
  type SnapshotGenerator,
  StreamSnapshotter,
} from "../mod.ts";
import { initSnapshotMetadata } from "../src/metadata.ts";
import { ownsShard } from "../src/stream_snapshotter.ts";
import { runCli, spawnCli } from "./support/cli.ts";
import { makeRecords, putRecords, type TestRecord } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { type KinesisEmulator, sharedKinesis, SHARES_EMULATORS } from "./support/fixture.ts";
import { type WatchedOutput, watchOutput } from "./support/output.ts";
import { fromFileUrl } from "./support/paths.ts";

const emulators = sharedKinesis("streambolt-replicate-");
Deno.test.afterAll(() => emulators.stop());

const READER = fromFileUrl(new URL("./support/replica_reader.py", import.meta.url));
const SHARD0 = "shardId-000000000000";

/** Whether python3 runs here; the cases that need it say so when it does not. */
const PYTHON = await (async () => {
  try {
    return (await new Deno.Command("python3", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
})();
if (!PYTHON) console.warn("replicate_test: python3 is missing, so the reader cases are skipped");

const WITH_PYTHON = { ...SHARES_EMULATORS, ignore: !PYTHON };

// ---- The ledger: a generator whose every point keeps an invariant. ----

const ACCOUNTS = 20;
const TOTAL = ACCOUNTS * 1_000;
/** True at every whole point: the money is all there, and one move per record applied. */
const INVARIANT = `SELECT (SELECT sum(balance) FROM accounts) = ${TOTAL}
  AND (SELECT count(*) FROM moves) = (SELECT records_applied FROM streambolt_meta)`;

/** Each record moves an amount between two accounts (one row per move). */
const ledger: SnapshotGenerator = {
  bootstrap(db) {
    db.exec(`CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
      CREATE TABLE moves (seq TEXT PRIMARY KEY NOT NULL, amount INTEGER NOT NULL)`);
    const insert = db.prepare("INSERT INTO accounts VALUES (?, 1000)");
    for (let id = 0; id < ACCOUNTS; id++) insert.run(id);
    return "0";
  },
  onRecords(db, batch) {
    const change = db.prepare("UPDATE accounts SET balance = balance + ? WHERE id = ?");
    const move = db.prepare("INSERT INTO moves VALUES (?, ?)");
    for (const r of batch.records) {
      const { from, to, amount } = JSON.parse(new TextDecoder().decode(r.data));
      change.run(-amount, from);
      change.run(amount, to);
      move.run(r.sequenceNumber, amount);
    }
  },
};

let transferSeed = 1;
function transfers(count: number): TestRecord[] {
  let state = transferSeed++ * 7919;
  const next = () => (state = (state * 1103515245 + 12345) % 2147483648);
  return Array.from({ length: count }, (_, i) => ({
    partitionKey: `t${i % 50}`,
    data: new TextEncoder().encode(JSON.stringify({
      from: next() % ACCOUNTS,
      to: next() % ACCOUNTS,
      amount: next() % 100,
    })),
  }));
}

// ---- Processes ----

interface Reader {
  child: Deno.ChildProcess;
  out: WatchedOutput;
  /** Every poll's line so far. */
  lines(): Array<{ poll: number; seq?: string; ok?: boolean; error?: string; missing?: boolean }>;
  stop(): Promise<void>;
}

function startReader(file: string, intervalMs: number): Reader {
  const child = new Deno.Command("python3", {
    args: [READER, "poll", file, String(intervalMs), INVARIANT],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const out = watchOutput(child.stdout);
  return {
    child,
    out,
    lines: () => out.text().split("\n").filter((l) => l.endsWith("}")).map((l) => JSON.parse(l)),
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await out.done;
    },
  };
}

async function python(args: string[]): Promise<unknown> {
  const output = await new Deno.Command("python3", { args: [READER, ...args], stderr: "inherit" })
    .output();
  assert.ok(output.success, `python3 ${args.join(" ")} failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

interface Replicate {
  child: Deno.ChildProcess;
  stderr: WatchedOutput;
}

async function startReplicate(cwd: string, env: Record<string, string>, args: string[]) {
  const child = await spawnCli(
    ["replicate", "--store", "./store", "--out", "./out", "--log-format", "json", ...args],
    { cwd, env },
  );
  const stdout = watchOutput(child.stdout);
  const replicate: Replicate = { child, stderr: watchOutput(child.stderr) };
  stdout.done.catch(() => {});
  return replicate;
}

/** Waits for a JSON log line with this message and these fields. */
async function logged(
  r: Replicate,
  msg: string,
  fields: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const found = () =>
    r.stderr.text().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .find((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
  // A wrong expectation fails with the log rather than hanging the suite.
  const deadline = Date.now() + LOG_WAIT_MS;
  for (;;) {
    const line = found();
    if (line) return line;
    const length = r.stderr.text().length;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grew = await Promise.race([
      r.stderr.until(new RegExp(`^[\\s\\S]{${length + 1}}`)),
      new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), Math.max(0, deadline - Date.now()));
      }),
    ]).finally(() => clearTimeout(timer));
    if (grew === "late" && !found()) {
      throw new Error(
        `replicate did not log "${msg}" within ${LOG_WAIT_MS / 1000} s:\n${r.stderr.text()}`,
      );
    }
    if (!grew && !found()) {
      throw new Error(`replicate ended without logging "${msg}":\n${r.stderr.text()}`);
    }
  }
}

/** How long {@linkcode logged} waits for a line: far past any expected wait, on a busy machine. */
const LOG_WAIT_MS = 180_000;

async function stopReplicate(r: Replicate, signal: Deno.Signal): Promise<Deno.CommandStatus> {
  r.child.kill(signal);
  const status = await r.child.status;
  await r.stderr.done;
  return status;
}

/** A one-shard stream with a ledger published to a file store under `cwd/store`. */
async function ledgerStream(name: string) {
  const e = await emulators.get();
  const cwd = await Deno.makeTempDir({ dir: e.temp, prefix: `${name}-` });
  await createStream(e.kinesis, name, 1);
  const store = new FileSnapshotStore({ root: join(cwd, "store") });
  const snapshotter = (full = false) =>
    new ShardSnapshotter({
      kinesis: e.kinesis,
      store,
      stream: name,
      shardId: SHARD0,
      localPath: join(cwd, "work"),
      generator: ledger,
      full,
      // Deltas, not fulls, unless asked: the ledger is small enough that the default policy
      // publishes each point as one full, and these cases apply deltas (and kill one).
      chain: { maxRestoreRatio: Infinity },
    });
  const publish = async (records: number, full = false): Promise<Snapshot> => {
    await putRecords(e.writer, name, transfers(records), 1);
    return await snapshotter(full).snapshotShard();
  };
  return { e, cwd, store, publish, file: join(cwd, "out", name, `${SHARD0}.sqlite`) };
}

// ---- Cases ----

Deno.test(
  "replicate: a Python reader sees whole points only, and each new point within two polls",
  WITH_PYTHON,
  async () => {
    const s = await ledgerStream("whole-points");
    await s.publish(300);
    const r = await startReplicate(s.cwd, s.e.env, [
      "--stream",
      "whole-points",
      "--shard",
      SHARD0,
      "--poll",
      "200ms",
    ]);
    const reader = startReader(s.file, 50);
    try {
      await logged(r, "applied point", { kind: "full" });
      for (const [records, full] of [[200, false], [400, false], [150, true], [250, false]]) {
        const point = await s.publish(records as number, full as boolean);
        await logged(r, "applied point", { sequenceNumber: point.sequenceNumber });
        const before = reader.lines().at(-1)?.poll ?? 0;
        await reader.out.until(new RegExp(`"poll": ${before + 2},`));
        const seen = reader.lines().find((l) => l.seq === point.sequenceNumber);
        assert.ok(
          seen && seen.poll <= before + 2,
          `the reader saw ${point.sequenceNumber} at poll ${seen?.poll}, not by ${before + 2}`,
        );
      }
    } finally {
      await reader.stop();
      assert.equal((await stopReplicate(r, "SIGTERM")).code, 0, r.stderr.text());
    }
    const lines = reader.lines();
    assert.deepEqual(lines.filter((l) => l.error || l.ok === false), []);
    assert.ok(lines.filter((l) => l.ok).length > 10);
    const end = await python(["check", s.file, INVARIANT]) as Record<string, unknown>;
    assert.deepEqual({ integrity: end.integrity, ok: end.ok }, { integrity: "ok", ok: true });
    // Checkpointed on exit: the WAL holds nothing.
    const wal = await Deno.stat(`${s.file}-wal`).then((i) => i.size, () => 0);
    assert.equal(wal, 0);
  },
);

Deno.test(
  "replicate: kill -9 while applying leaves a readable whole point; a restart resumes from the file",
  WITH_PYTHON,
  async () => {
    const s = await ledgerStream("killed");
    const first = await s.publish(300);
    const args = ["--stream", "killed", "--shard", SHARD0, "--poll", "200ms", "--verbose"];
    let r = await startReplicate(s.cwd, s.e.env, args);
    await logged(r, "applied point", { sequenceNumber: first.sequenceNumber });
    const next = await s.publish(3_000);
    await logged(r, "applying point", { sequenceNumber: next.sequenceNumber });
    await stopReplicate(r, "SIGKILL");
    const after = await python(["check", s.file, INVARIANT]) as Record<string, unknown>;
    assert.equal(after.integrity, "ok");
    assert.equal(after.ok, true);
    assert.ok(
      [first.sequenceNumber, next.sequenceNumber].includes(after.seq as string),
      `the file is at ${after.seq}`,
    );

    r = await startReplicate(s.cwd, s.e.env, args);
    await logged(r, "resuming replica file", { sequenceNumber: after.seq });
    if (after.seq !== next.sequenceNumber) {
      await logged(r, "applied point", { sequenceNumber: next.sequenceNumber, kind: "delta" });
    }
    await logged(r, "every shard holds a point");
    assert.equal((await stopReplicate(r, "SIGTERM")).code, 0, r.stderr.text());
    assert.doesNotMatch(r.stderr.text(), /"kind":"full"/);
    const end = await python(["check", s.file, INVARIANT]) as Record<string, unknown>;
    assert.deepEqual(end, { integrity: "ok", seq: next.sequenceNumber, ok: true });
    const status = JSON.parse(await Deno.readTextFile(join(s.cwd, "out", "killed", "status.json")));
    assert.equal(status.shards[0].sequenceNumber, next.sequenceNumber);
  },
);

async function splitFirstShard(e: KinesisEmulator, stream: string): Promise<void> {
  const [s0] = await listStreamShards(e.kinesis, stream);
  const range = s0.hashKeyRange;
  const mid = (BigInt(range.startingHashKey) + BigInt(range.endingHashKey)) / 2n;
  await e.kinesis.send(
    new SplitShardCommand({
      StreamName: stream,
      ShardToSplit: s0.shardId,
      NewStartingHashKey: mid.toString(),
    }),
  );
  await waitUntilStreamExists({ client: e.kinesis, maxWaitTime: 60, minDelay: 1 }, {
    StreamName: stream,
  });
}

/** A new 2-shard stream, its directory, and a run of a StreamSnapshotter (kv) into its store. */
async function twoShardStream(stream: string) {
  const e = await emulators.get();
  const cwd = await Deno.makeTempDir({ dir: e.temp, prefix: `${stream}-` });
  await createStream(e.kinesis, stream, 2);
  const snapshotStream = () =>
    new StreamSnapshotter({
      kinesis: e.kinesis,
      store: new FileSnapshotStore({ root: join(cwd, "store") }),
      stream,
      localPath: join(cwd, "work"),
      generator: kvGenerator(),
    }).snapshotStream();
  return { e, cwd, snapshotStream };
}

Deno.test(
  "replicate: after a reshard mid-run, every key is in the file shards.json routes it to",
  WITH_PYTHON,
  async () => {
    const stream = "resharded";
    const { e, cwd, snapshotStream } = await twoShardStream(stream);
    const records = makeRecords(400, { keys: 120, seed: 3 });
    await putRecords(e.writer, stream, records, 1);
    await snapshotStream();
    const r = await startReplicate(cwd, e.env, [
      "--stream",
      stream,
      "--poll",
      "200ms",
      "--ready-file",
      "./ready",
    ]);
    try {
      await logged(r, "every shard holds a point");
      await Deno.stat(join(cwd, "ready"));
      await splitFirstShard(e, stream);
      const more = makeRecords(400, { keys: 120, seed: 4 });
      records.push(...more);
      await putRecords(e.writer, stream, more, 1);
      await snapshotStream();
      await snapshotStream();
      await logged(r, "retired the file of a closed shard: its children hold points");
      const shards = await listStreamShards(e.kinesis, stream);
      const open = shards.filter((s) => !s.closed);
      for (const s of open) await logged(r, "applied point", { shard: s.shardId });
      await waitForRouting(cwd, stream, open.map((s) => s.shardId));
    } finally {
      assert.equal((await stopReplicate(r, "SIGTERM")).code, 0, r.stderr.text());
    }
    const latest = new Map<string, string>();
    for (const rec of records) latest.set(rec.partitionKey, toHex(rec.data));
    const found = await python(["route", join(cwd, "out", stream), ...latest.keys()]) as Record<
      string,
      { shard: string; value: string | null }
    >;
    const wrong = [...latest].filter(([key, value]) => found[key].value !== value);
    assert.deepEqual(wrong, []);
    const closed = shards0(await listStreamShards(e.kinesis, stream));
    await assert.rejects(Deno.stat(join(cwd, "out", stream, `${closed}.sqlite`)));
  },
);

function shards0(shards: Array<{ shardId: string; closed: boolean }>): string {
  return shards.find((s) => s.closed)!.shardId;
}

/** Waits (on status.json, read by the test) until shards.json routes to exactly `ids`. */
async function waitForRouting(cwd: string, stream: string, ids: string[]): Promise<void> {
  const file = join(cwd, "out", stream, "shards.json");
  for (;;) {
    const routed = JSON.parse(await Deno.readTextFile(file)).shards
      .map((s: { shardId: string }) => s.shardId);
    if (JSON.stringify(routed.sort()) === JSON.stringify([...ids].sort())) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- Bad input: no emulators, nothing of the reader's overwritten ----

async function badInput(
  prepare: (cwd: string, dir: string) => Promise<string>,
  expected: RegExp,
  outDir = "./out",
): Promise<void> {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-replicate-bad-" });
  try {
    const dir = join(cwd, "out", "s");
    await Deno.mkdir(dir, { recursive: true });
    await Deno.mkdir(join(cwd, "store"));
    const guarded = await prepare(cwd, dir);
    const before = await Deno.readFile(guarded);
    const result = await runCli(
      ["replicate", "--stream", "s", "--shard", SHARD0, "--store", "./store", "--out", outDir],
      { cwd },
    );
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], expected);
    assert.deepEqual(await Deno.readFile(guarded), before);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

function snapshotFile(file: string, stream: string, shardId: string): void {
  const db = new DatabaseSync(file);
  db.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB); BEGIN");
  for (let i = 0; i < 500; i++) {
    db.prepare("INSERT INTO kv VALUES (?, ?)").run(`k${i}`, new Uint8Array(200).fill(i % 256));
  }
  initSnapshotMetadata(db, { stream, shardId, sequenceNumber: "0" });
  db.exec("COMMIT");
  db.close();
}

Deno.test(
  "replicate: a second process on the same directory is refused in one line; the first goes on",
  WITH_PYTHON,
  async () => {
    const s = await ledgerStream("two-processes");
    await s.publish(100);
    const args = ["--stream", "two-processes", "--shard", SHARD0, "--poll", "200ms"];
    const first = await startReplicate(s.cwd, s.e.env, args);
    try {
      await logged(first, "every shard holds a point");
      const second = await startReplicate(s.cwd, s.e.env, args);
      // Without the lock the second would run alongside: that fails the case, not hangs it.
      const ran = logged(second, "every shard holds a point").then(() => true, () => false);
      if (await Promise.race([second.child.status.then(() => false), ran])) {
        await stopReplicate(second, "SIGKILL");
        assert.fail("a second replicate process ran on the same directory");
      }
      const status = await second.child.status;
      await second.stderr.done;
      assert.notEqual(status.code, 0);
      const lines = second.stderr.text().trim().split("\n");
      assert.equal(lines.length, 1, second.stderr.text());
      assert.match(
        lines[0],
        /Cannot replicate into the directory as another process \(pid \d+\) is replicating into it: current value is .*out\/two-processes/,
      );
      // The first still holds the directory and applies new points.
      const next = await s.publish(100);
      await logged(first, "applied point", { sequenceNumber: next.sequenceNumber });
    } finally {
      assert.equal((await stopReplicate(first, "SIGTERM")).code, 0, first.stderr.text());
    }
  },
);

Deno.test(
  "replicate --worker I/N: each worker keeps the files of its own share of the shards",
  WITH_PYTHON,
  async () => {
    const stream = "workers";
    const { e, cwd, snapshotStream } = await twoShardStream(stream);
    await putRecords(e.writer, stream, makeRecords(200, { keys: 60, seed: 8 }), 1);
    const published = await snapshotStream();
    assert.equal(published.length, 2);
    const held = new Map<number, string[]>();
    for (const index of [0, 1]) {
      const r = await startReplicate(cwd, e.env, [
        "--stream",
        stream,
        "--worker",
        `${index}/2`,
        "--out",
        `./out-${index}`,
      ]);
      try {
        await logged(r, "every shard holds a point");
      } finally {
        assert.equal((await stopReplicate(r, "SIGTERM")).code, 0, r.stderr.text());
      }
      const files = [];
      for await (const entry of Deno.readDir(join(cwd, `out-${index}`, stream))) {
        if (entry.name.endsWith(".sqlite")) files.push(entry.name.replace(/\.sqlite$/, ""));
      }
      held.set(index, files.sort());
    }
    // The shares are the snapshotter's (a stable hash of the shard id): disjoint, and together
    // every shard; each file at the point published for its shard.
    for (const [index, files] of held) {
      const share = published.filter((p) => ownsShard(p.shardId, { index, count: 2 }));
      assert.deepEqual(files, share.map((p) => p.shardId).sort(), `worker ${index}`);
      for (const point of share) {
        const db = new DatabaseSync(join(cwd, `out-${index}`, stream, `${point.shardId}.sqlite`), {
          readOnly: true,
        });
        try {
          const meta = db.prepare("SELECT shard_id, sequence_number FROM streambolt_meta").get();
          assert.deepEqual({ ...meta }, {
            shard_id: point.shardId,
            sequence_number: point.sequenceNumber,
          });
        } finally {
          db.close();
        }
      }
    }
    assert.deepEqual([...held.values()].flat().sort(), published.map((p) => p.shardId).sort());
  },
);

Deno.test("replicate: a directory of another store is refused", async () => {
  await badInput(
    async (_cwd, dir) => {
      const file = join(dir, "replica.json");
      await Deno.writeTextFile(
        file,
        JSON.stringify({ format: 1, stream: "s", store: "file:///elsewhere" }),
      );
      return file;
    },
    /^streambolt: error: Cannot replicate into the directory as it holds s from file:\/\/\/elsewhere/,
  );
});

Deno.test("replicate: a file of another stream is refused", async () => {
  await badInput((_cwd, dir) => {
    const file = join(dir, `${SHARD0}.sqlite`);
    snapshotFile(file, "other", SHARD0);
    return Promise.resolve(file);
  }, /Cannot resume replica file as it holds other\/shardId-000000000000, not s\//);
});

Deno.test("replicate: a file that fails integrity_check is refused", async () => {
  await badInput(async (_cwd, dir) => {
    const file = join(dir, `${SHARD0}.sqlite`);
    snapshotFile(file, "s", SHARD0);
    const bytes = await Deno.readFile(file);
    bytes.fill(0x5a, 4096 * 2, 4096 * 2 + 12); // a table page's header
    await Deno.writeFile(file, bytes);
    return file;
  }, /Cannot resume replica file as it fails integrity_check \(/);
});

Deno.test("replicate: an unwritable directory is refused", async (t) => {
  await t.step("a file where the directory should be", async () => {
    await badInput(
      async (cwd) => {
        const file = join(cwd, "blocked");
        await Deno.writeTextFile(file, "a reader's file\n");
        return file;
      },
      /Cannot replicate into the directory as it is not writable/,
      "./blocked",
    );
  });
  await t.step("outside what the CLI may write", async () => {
    await badInput(
      async (cwd) => {
        const file = join(cwd, "store", "keep");
        await Deno.writeTextFile(file, "kept\n");
        return file;
      },
      /Cannot replicate into the directory as it is not writable/,
      "/proc/streambolt",
    );
  });
});

Deno.test(
  "replicate --from kinesis: a file follows the shard itself, and SIGTERM leaves it whole",
  WITH_PYTHON,
  async () => {
    const e = await emulators.get();
    const stream = "from-kinesis";
    const cwd = await Deno.makeTempDir({ dir: e.temp, prefix: "kinesis-" });
    await createStream(e.kinesis, stream, 1);
    await Deno.mkdir(join(cwd, "store"));
    const r = await startReplicate(cwd, e.env, [
      "--stream",
      stream,
      "--shard",
      SHARD0,
      "--from",
      "kinesis",
      "--generator",
      "kv",
      "--poll",
      "200ms",
    ]);
    const records = makeRecords(300, { keys: 40, seed: 9 });
    try {
      await logged(r, "every shard holds a point");
      const put = await putRecords(e.writer, stream, records, 1);
      await logged(r, "applied point", { sequenceNumber: put.at(-1)!.sequenceNumber });
    } finally {
      assert.equal((await stopReplicate(r, "SIGTERM")).code, 0, r.stderr.text());
    }
    const file = join(cwd, "out", stream, `${SHARD0}.sqlite`);
    const keys = new Set(records.map((rec) => rec.partitionKey)).size;
    const check = `SELECT (SELECT count(*) FROM kv) = ${keys}`;
    const end = await python(["check", file, check]) as Record<string, unknown>;
    assert.deepEqual({ integrity: end.integrity, ok: end.ok }, { integrity: "ok", ok: true });
  },
);
