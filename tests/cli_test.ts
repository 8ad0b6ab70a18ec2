/**
 * The CLI end to end: `deno run` with the cli task's permissions, against one kinesis-local and
 * one fauxqs shared by the cases (each case has its own stream, bucket and working directory).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type KinesisClient, ListShardsCommand } from "@aws-sdk/client-kinesis";
import { type CliResult, permissionFlags, runCli, tasks } from "./support/cli.ts";
import { makeRecords, putRecords, type PutResult, type TestRecord } from "./support/data.ts";
import { createBucket, createStream } from "./support/emulators.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";
import { exists } from "./support/snapshots.ts";

const emulators = sharedKinesisAndS3("streambolt-cli-");
Deno.test.afterAll(() => emulators.stop());

function oneLineError(result: CliResult, ...mentions: string[]): void {
  assert.notEqual(result.code, 0, `expected failure, got: ${result.stdout}`);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], /^streambolt: error: /);
  for (const m of mentions) assert.ok(lines[0].includes(m), `"${m}" in: ${lines[0]}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
}

function ok(result: CliResult): CliResult {
  assert.equal(
    result.code,
    0,
    `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
  );
  return result;
}

/** The newest record's data per partition key, as the kv generator should hold it. */
function expectedKv(records: TestRecord[], results: PutResult[]): Map<string, string> {
  const newest = new Map<string, { seq: bigint; data: string }>();
  records.forEach((r, i) => {
    const seq = BigInt(results[i].sequenceNumber);
    const seen = newest.get(r.partitionKey);
    if (!seen || seq > seen.seq) {
      newest.set(r.partitionKey, { seq, data: new TextDecoder().decode(r.data) });
    }
  });
  return new Map([...newest].map(([k, v]) => [k, v.data]));
}

async function shardIds(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const out = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  return (out.Shards ?? []).map((s) => s.ShardId!);
}

/** A case's own two-shard stream with 400 records, its own bucket and working directory. */
interface Orders {
  stream: string;
  /** `s3://BUCKET/snaps`, empty. */
  store: string;
  shard0: string;
  shard1: string;
  firstRecords: TestRecord[];
  first: PutResult[];
  cwd: string;
  /** Runs the CLI in `cwd` against the emulators. */
  cli(...args: string[]): Promise<CliResult>;
}

async function orders(): Promise<Orders> {
  const { kinesis, writer, s3, temp, env } = await emulators.get();
  const stream = uniqueName("orders");
  const bucket = uniqueName("cli-bucket");
  await createStream(kinesis, stream, 2);
  await createBucket(s3, bucket);
  const [shard0, shard1] = await shardIds(kinesis, stream);
  const firstRecords = makeRecords(400, { keys: 60, seed: 11 });
  const first = await putRecords(writer, stream, firstRecords);
  const cwd = await Deno.makeTempDir({ dir: temp });
  return {
    stream,
    store: `s3://${bucket}/snaps`,
    shard0,
    shard1,
    firstRecords,
    first,
    cwd,
    cli: (...args) => runCli(args, { cwd, env }),
  };
}

/** `orders()` after a first `snapshot` of every shard with kv, and what that run printed. */
async function publishedOrders(): Promise<
  Orders & { firstSnapshots: Array<Record<string, unknown>> }
> {
  const o = await orders();
  const result = ok(await o.cli("snapshot", "--stream", o.stream, "--store", o.store, "--json"));
  return { ...o, firstSnapshots: JSON.parse(result.stdout) };
}

/** Puts 300 more records and snapshots every shard again: the records and what it printed. */
async function snapshotAgain(o: Orders, ...extra: string[]): Promise<{
  moreRecords: TestRecord[];
  more: PutResult[];
  result: Array<Record<string, unknown>>;
}> {
  const { writer } = await emulators.get();
  const moreRecords = makeRecords(300, { keys: 60, seed: 12 });
  const more = await putRecords(writer, o.stream, moreRecords);
  const result = JSON.parse(
    ok(await o.cli("snapshot", "--stream", o.stream, "--store", o.store, "--json", "-q", ...extra))
      .stdout,
  );
  return { moreRecords, more, result };
}

Deno.test("the compile task bakes in exactly the permissions the CLI is tested with", async () => {
  const all = await tasks();
  const cli = permissionFlags(all.cli);
  assert.deepEqual(permissionFlags(all.compile), cli);
  assert.ok(cli.length > 0);
  for (const [name, task] of Object.entries(all)) {
    assert.doesNotMatch(task, /(^|\s)(-A|--allow-all)(\s|$)/, `task ${name} uses -A`);
  }
  // Narrow: no blanket network, read or write access.
  for (const flag of ["--allow-net", "--allow-read", "--allow-write", "--allow-env"]) {
    assert.ok(cli.some((f) => f.startsWith(flag + "=")), `${flag} is scoped`);
    assert.ok(!cli.includes(flag), `${flag} is not blanket`);
  }
});

Deno.test(
  "streambolt snapshot publishes every shard of a two-shard stream with kv",
  SHARES_EMULATORS,
  async () => {
    const { cli, stream, store, shard0, shard1, first, cwd } = await orders();
    const result = ok(await cli("snapshot", "--stream", stream, "--store", store, "--json"));
    const firstSnapshots: Array<Record<string, unknown>> = JSON.parse(result.stdout);
    assert.equal(firstSnapshots.length, 2);
    assert.deepEqual(firstSnapshots.map((s) => s.shardId).sort(), [shard0, shard1]);
    for (const s of firstSnapshots) {
      assert.equal(s.published, true);
      const put = first.filter((r) => r.shardId === s.shardId);
      assert.equal(s.recordsApplied, put.length);
    }
    assert.equal(await exists(join(cwd, ".streambolt-local", ".streambolt")), false);
  },
);

Deno.test("streambolt list and latest print what was published", SHARES_EMULATORS, async () => {
  const { cli, stream, store, shard0, firstSnapshots } = await publishedOrders();
  const listed = JSON.parse(
    ok(await cli("list", "--stream", stream, "--store", store, "--json")).stdout,
  );
  assert.equal(listed.length, 2);
  for (const s of listed) {
    assert.ok(s.shardId && s.sequenceNumber && s.key);
  }
  const table = ok(await cli("list", "--stream", stream, "--store", store)).stdout;
  assert.match(table, /^SHARD\s+SEQUENCE/);
  // A stream with nothing stored (a misspelt name, another store): exit 0, and stderr says so.
  for (const command of ["list", "gc"]) {
    const empty = ok(await cli(command, "--stream", "no-such-orders", "--store", store, "--json"));
    assert.match(empty.stderr, /no snapshots found.*no-such-orders/, command);
  }
  const latest = JSON.parse(
    ok(await cli("latest", "--stream", stream, "--shard", shard0, "--store", store, "--json"))
      .stdout,
  );
  const mine = firstSnapshots.find((s) => s.shardId === shard0)!;
  assert.equal(latest.sequenceNumber, mine.sequenceNumber);
  assert.equal(latest.key, mine.key);
});

Deno.test(
  "a second streambolt snapshot applies only the new records; download and inspect read the result",
  SHARES_EMULATORS,
  async () => {
    const published = await publishedOrders();
    const { cli, stream, store, shard0, shard1, firstRecords, first, firstSnapshots, cwd } =
      published;
    const { moreRecords, more, result } = await snapshotAgain(published);
    for (const s of result) {
      assert.equal(s.recordsApplied, more.filter((r) => r.shardId === s.shardId).length);
      const old = firstSnapshots.find((o) => o.shardId === s.shardId)!;
      assert.ok(BigInt(s.sequenceNumber as string) > BigInt(old.sequenceNumber as string));
    }
    const expected = expectedKv([...firstRecords, ...moreRecords], [...first, ...more]);
    const seen = new Map<string, string>();
    for (const shard of [shard0, shard1]) {
      const dl = JSON.parse(
        ok(
          await cli(
            "download",
            "--stream",
            stream,
            "--shard",
            shard,
            "--store",
            store,
            "--out",
            "dl/nested",
            "--json",
          ),
        ).stdout,
      );
      assert.ok(await exists(join(cwd, "dl/nested")));
      const file = dl.localFile as string;
      assert.ok(file.startsWith(join(cwd, "dl/nested")));
      const info = JSON.parse(ok(await cli("inspect", file, "--json")).stdout);
      const total = [...first, ...more].filter((r) => r.shardId === shard).length;
      assert.equal(info.metadata.recordsApplied, total);
      assert.equal(info.metadata.shardId, shard);
      const kvCount = info.tables.find((x: { table: string }) => x.table === "kv").rows;
      assert.equal(
        Number(ok(await cli("inspect", file, "--count", "kv")).stdout.trim()),
        kvCount,
      );
      const rows = JSON.parse(
        ok(
          await cli(
            "inspect",
            file,
            "--sql",
            "SELECT key, value FROM kv",
            "--limit",
            "1000",
            "--json",
          ),
        )
          .stdout,
      );
      assert.equal(rows.length, kvCount);
      for (const r of rows) seen.set(r.key, r.value);
      const someKey = rows[0].key as string;
      const got = ok(await cli("inspect", file, "--get", someKey)).stdout;
      assert.ok(got.includes(expected.get(someKey)!));
      const keys = ok(await cli("inspect", file, "--keys", "k1")).stdout.trim().split("\n");
      assert.ok(keys.every((k) => k.startsWith("k1")) && keys.length > 0);
      // Read-only whatever the SQL says.
      oneLineError(await cli("inspect", file, "--sql", "DELETE FROM kv"), "DELETE FROM kv");
      assert.equal(
        Number(ok(await cli("inspect", file, "--count", "kv")).stdout.trim()),
        kvCount,
      );
    }
    assert.deepEqual(seen, expected, "kv holds the newest value of every key");
  },
);

Deno.test("streambolt gc keeps the newest snapshot of every shard", SHARES_EMULATORS, async () => {
  const published = await publishedOrders();
  const { cli, stream, store, shard1, firstSnapshots } = published;
  // Full snapshots only, one per run and shard (gc of delta chains has its own test).
  await snapshotAgain(published, "--full");
  const dry = JSON.parse(
    ok(
      await cli(
        "gc",
        "--stream",
        stream,
        "--store",
        store,
        "--keep",
        "1",
        "--dry-run",
        "--json",
      ),
    )
      .stdout,
  );
  assert.equal(dry.deleted.length, 2);
  assert.equal(
    JSON.parse(ok(await cli("list", "--stream", stream, "--store", store, "--json")).stdout)
      .length,
    4,
    "dry run deletes nothing",
  );
  const latestBefore = JSON.parse(
    ok(await cli("latest", "--stream", stream, "--shard", shard1, "--store", store, "--json"))
      .stdout,
  );
  ok(await cli("gc", "--stream", stream, "--store", store, "--keep", "1"));
  const left = JSON.parse(
    ok(await cli("list", "--stream", stream, "--store", store, "--json")).stdout,
  );
  assert.equal(left.length, 2);
  assert.ok(left.some((s: { key: string }) => s.key === latestBefore.key));
  assert.deepEqual(
    new Set(dry.deleted.map((s: { key: string }) => s.key)),
    new Set(firstSnapshots.map((s) => s.key)),
  );
});

Deno.test(
  "a plain local path works as a file store, with the log generator",
  SHARES_EMULATORS,
  async () => {
    const { cli, stream, shard0, cwd } = await orders();
    ok(
      await cli(
        "snapshot",
        "--stream",
        stream,
        "--shard",
        shard0,
        "--store",
        "local-snaps",
        "--generator",
        "log",
        "-q",
      ),
    );
    const listed = JSON.parse(
      ok(await cli("list", "--stream", stream, "--store", `file://${cwd}/local-snaps`, "--json"))
        .stdout,
    );
    assert.equal(listed.length, 1);
    assert.equal(listed[0].shardId, shard0);
  },
);

Deno.test("a generator module given by path is loaded", SHARES_EMULATORS, async () => {
  const { cli, stream, shard1, first, cwd } = await orders();
  await Deno.writeTextFile(
    join(cwd, "count_gen.ts"),
    `export default {
      onStart(db) { db.exec("CREATE TABLE IF NOT EXISTS n (c INTEGER)"); },
      onRecords(db, batch) { db.prepare("INSERT INTO n VALUES (?)").run(batch.records.length); },
    };\n`,
  );
  const result = JSON.parse(
    ok(
      await cli(
        "snapshot",
        "--stream",
        stream,
        "--shard",
        shard1,
        "--store",
        "gen-snaps",
        "--generator",
        "./count_gen.ts",
        "--json",
        "-q",
      ),
    )
      .stdout,
  );
  const expected = first.filter((r) => r.shardId === shard1).length;
  assert.equal(result[0].recordsApplied, expected);
  const dl = JSON.parse(
    ok(
      await cli(
        "download",
        "--stream",
        stream,
        "--shard",
        shard1,
        "--store",
        "gen-snaps",
        "--out",
        "gen-dl",
        "--json",
      ),
    )
      .stdout,
  );
  const sum = JSON.parse(
    ok(await cli("inspect", dl.localFile, "--sql", "SELECT sum(c) AS total FROM n", "--json"))
      .stdout,
  );
  assert.equal(sum[0].total, expected);
});

Deno.test(
  "bad input gets one line naming the value and a non-zero exit",
  SHARES_EMULATORS,
  async () => {
    const { cli, stream, store, shard0, cwd } = await orders();
    oneLineError(await cli("frobnicate"), '"frobnicate"');
    oneLineError(await cli("list", "--store", store), "--stream");
    oneLineError(await cli("list", "--stream", stream, "--store", "ftp://x/y"), '"ftp://x/y"');
    oneLineError(await cli("list", "--stream", stream, "--store", "s3://A_B/x"), '"s3://A_B/x"');
    oneLineError(await cli("list", "--stream", "bad/name", "--store", store), '"bad/name"');
    oneLineError(await cli("list", "--stream", stream, "--store", store, "--nope"), "--nope");
    oneLineError(
      await cli("snapshot", "--stream", "no-such-stream", "--store", store, "-q"),
      '"no-such-stream"',
    );
    oneLineError(
      await cli(
        "snapshot",
        "--stream",
        stream,
        "--shard",
        "shardId-000000000042",
        "--store",
        store,
        "-q",
      ),
      '"shardId-000000000042"',
    );
    oneLineError(
      await cli("snapshot", "--stream", stream, "--store", store, "--done-lag", "soon"),
      '"soon"',
    );
    // A follower publishing after every page would upload a point per GetRecords call.
    oneLineError(
      await cli(
        "snapshot",
        "--stream",
        stream,
        "--store",
        store,
        "--follow",
        "--publish-every",
        "0s",
      ),
      '"0s"',
    );
    oneLineError(
      await cli("snapshot", "--stream", stream, "--store", store, "--generator", "./nope.ts"),
      '"./nope.ts"',
    );
    oneLineError(await cli("gc", "--stream", stream, "--store", store, "--keep", "-1"), '"-1"');
    oneLineError(await cli("gc", "--stream", stream, "--store", store, "--keep", "0"), '"0"');
    oneLineError(
      await cli(
        "gc",
        "--stream",
        stream,
        "--store",
        store,
        "--keep",
        "1",
        "--older-than",
        "tuesday",
      ),
      '"tuesday"',
    );
    oneLineError(
      await cli(
        "latest",
        "--stream",
        stream,
        "--shard",
        "shardId-000000000009",
        "--store",
        store,
      ),
      "shardId-000000000009",
    );
    oneLineError(await cli("inspect", "missing.sqlite"), '"missing.sqlite"');
    await Deno.writeTextFile(
      join(cwd, "not-sqlite.txt"),
      "hello, this is not a database at all".repeat(40),
    );
    oneLineError(await cli("inspect", "not-sqlite.txt"), '"not-sqlite.txt"');
    oneLineError(
      await cli(
        "download",
        "--stream",
        stream,
        "--shard",
        shard0,
        "--store",
        store,
        "--sequence",
        "12x",
      ),
      '"12x"',
    );
    // Usage errors exit 2, failures 1.
    assert.equal((await cli("frobnicate")).code, 2);
    assert.equal(
      (await cli(
        "latest",
        "--stream",
        stream,
        "--shard",
        "shardId-000000000009",
        "--store",
        store,
      )).code,
      1,
    );
  },
);

Deno.test(
  "a write outside the permitted directory is refused clearly",
  SHARES_EMULATORS,
  async () => {
    // The snapshot must exist, so that the write is what fails.
    const { cli, stream, store, shard0 } = await publishedOrders();
    const outside = await Deno.makeTempDir({ prefix: "streambolt-outside-" });
    try {
      const result = await cli(
        "download",
        "--stream",
        stream,
        "--shard",
        shard0,
        "--store",
        store,
        "--out",
        outside,
      );
      oneLineError(result, outside);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(outside)), []);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  },
);

Deno.test("streambolt --help names every command, and --version prints the version", async () => {
  // No emulators: this case keeps whatever sanitizers the run uses.
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-cli-help-" });
  const cli = (...args: string[]) => runCli(args, { cwd });
  try {
    const help = ok(await cli("--help"));
    for (
      const c of ["snapshot", "list", "latest", "download", "inspect", "status", "gc", "replicate"]
    ) {
      assert.match(help.stdout, new RegExp(`\\b${c}\\b`));
      assert.match(ok(await cli(c, "--help")).stdout, new RegExp(`Usage: streambolt ${c}`));
    }
    const version =
      JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).version;
    assert.equal(ok(await cli("--version")).stdout.trim(), `streambolt ${version}`);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
