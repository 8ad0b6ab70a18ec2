/**
 * `streambolt status` when Kinesis cannot be reached (no region set, or nothing answers at its
 * endpoint): what the store alone knows, one warning line saying why, and the exit status of
 * the --max-age rule on what it can judge. Snapshots are made against one kinesis-local, with
 * a file store; status then runs without it.
 */
import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { type CleanResult, closedPort, runCliCleanEnv } from "./support/clean_cli.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesis("streambolt-status-offline-");
Deno.test.afterAll(() => emulators.stop());

/** A two-shard stream snapshotted into `snaps` in `dir`. */
async function snapshotted(): Promise<{ stream: string; dir: string }> {
  const { kinesis, writer, temp, env } = await emulators.get();
  const stream = uniqueName("offline");
  await createStream(kinesis, stream, 2);
  await putRecords(writer, stream, makeRecords(40, { keys: 20, seed: 3 }));
  const dir = await Deno.makeTempDir({ dir: temp });
  const made = await runCli(["snapshot", "--stream", stream, "--store", "snaps", "-q"], {
    cwd: dir,
    env,
  });
  assert.equal(made.code, 0, made.stderr);
  return { stream, dir };
}

/** The stderr lines that are warnings (text format, not a terminal). */
function warnings(result: CleanResult): string[] {
  return result.stderr.split("\n").filter((l) => /level=warn/.test(l));
}

Deno.test(
  "status without a region reports what the store knows, with one warning saying how to set it",
  SHARES_EMULATORS,
  async () => {
    const { stream, dir } = await snapshotted();
    const result = await runCliCleanEnv(
      ["status", "--stream", stream, "--store", "snaps", "--max-age", "15m"],
      { home: dir, env: { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" } },
    );
    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line on stderr:\n${result.stderr}`);
    assert.equal(warnings(result).length, 1);
    assert.match(lines[0], /Kinesis/);
    assert.match(lines[0], /AWS_REGION/);
    const rows = result.stdout.trim().split("\n");
    assert.equal(rows.length, 3, result.stdout); // a header and both shards
    for (const row of rows.slice(1)) {
      assert.match(row, /^shardId-\S+\s+\?\s+\d+\s+full\s/, `state unknown, point known: ${row}`);
      assert.match(row, /\s+ok$/);
    }
  },
);

Deno.test(
  "status with nothing answering at the Kinesis endpoint judges ages by --max-age",
  SHARES_EMULATORS,
  async () => {
    const { stream, dir } = await snapshotted();
    const endpoint = `http://127.0.0.1:${closedPort()}`;
    const env = {
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "eu-west-1",
      AWS_ENDPOINT_URL_KINESIS: endpoint,
    };
    const status = (...extra: string[]) =>
      runCliCleanEnv(["status", "--stream", stream, "--store", "snaps", ...extra], {
        home: dir,
        env,
      });
    const json = await status("--json", "--max-age", "1h");
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.equal(report.kinesis, false);
    assert.equal(report.retentionHours, null);
    assert.equal(report.shards.length, 2);
    for (const shard of report.shards) {
      assert.equal(shard.closed, null);
      assert.equal(shard.kind, "full");
      assert.equal(typeof shard.ageMs, "number");
      assert.deepEqual(shard.problems, []);
    }
    assert.equal(warnings(json).length, 1);
    assert.ok(warnings(json)[0].includes(endpoint), json.stderr);
    // Older than --max-age, and no way to ask whether records wait: stale, as with Kinesis
    // when they do.
    const stale = await status("--max-age", "0s");
    assert.equal(stale.code, 1, stale.stdout);
    assert.equal(warnings(stale).length, 1);
    assert.match(stale.stderr, /error: Cannot pass the status check .* is \S+ old \(over 0s\)/);
  },
);
