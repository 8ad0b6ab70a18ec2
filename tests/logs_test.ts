/**
 * The CLI's stderr formats: `--log-format json` (one object per line) and the default text,
 * against one kinesis-local shared by the cases (each case has its own stream and directory).
 */
import assert from "node:assert/strict";
import { jsonLine } from "../src/cli/_log.ts";
import { type CliResult, runCli } from "./support/cli.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesis("streambolt-logs-");
Deno.test.afterAll(() => emulators.stop());

/** A JSON log line, as `--log-format json` writes it. */
interface LogLine {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A case's own two-shard stream with records, and a working directory (store: `snaps`). */
async function setup(records = 200): Promise<{
  stream: string;
  cli(...args: string[]): Promise<CliResult>;
}> {
  const { kinesis, writer, temp, env } = await emulators.get();
  const stream = uniqueName("logs");
  await createStream(kinesis, stream, 2);
  if (records > 0) await putRecords(writer, stream, makeRecords(records, { keys: 50, seed: 3 }));
  const cwd = await Deno.makeTempDir({ dir: temp });
  return { stream, cli: (...args) => runCli(args, { cwd, env }) };
}

/** Every stderr line, each parsed as JSON and checked for time, level and msg. */
function jsonLines(stderr: string): LogLine[] {
  assert.ok(!stderr.includes("\r"), "no progress line rewritten in place");
  return stderr.trim().split("\n").filter((l) => l !== "").map((line) => {
    const parsed = JSON.parse(line) as LogLine;
    assert.ok(!Number.isNaN(Date.parse(parsed.time)), line);
    assert.equal(parsed.time, new Date(parsed.time).toISOString(), line);
    assert.ok(["debug", "info", "warn", "error"].includes(parsed.level), line);
    assert.equal(typeof parsed.msg, "string", line);
    return parsed;
  });
}

Deno.test(
  "--log-format json writes each log and progress line of a snapshot run as one JSON object",
  SHARES_EMULATORS,
  async () => {
    const { stream, cli } = await setup();
    const result = await cli(
      "snapshot",
      "--stream",
      stream,
      "--store",
      "snaps",
      "--log-format",
      "json",
      "--verbose",
      "--json",
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = jsonLines(result.stderr);
    const published = lines.filter((l) => l.msg === "published snapshot");
    assert.equal(published.length, 2, result.stderr);
    for (const line of published) {
      assert.equal(line.level, "info");
      assert.match(String(line.shard), /^shardId-/);
      assert.equal(typeof line.records, "number", "numbers stay numbers");
    }
    const progress = lines.filter((l) => l.msg === "progress");
    for (const shard of published.map((l) => l.shard)) {
      const phases = progress.filter((l) => l.shard === shard).map((l) => l.phase);
      assert.ok(phases.includes("catch-up") && phases.includes("done"), phases.join(","));
    }
    assert.ok(lines.some((l) => l.level === "debug"), "--verbose adds debug objects");
    // stdout is the data, untouched by the log format.
    assert.equal(JSON.parse(result.stdout).length, 2);
  },
);

Deno.test(
  "--log-format json ends a failed command with one error object, --verbose adding the stack",
  SHARES_EMULATORS,
  async () => {
    const { stream, cli } = await setup(0);
    const missing = await cli(
      "snapshot",
      "--stream",
      "no-such-stream",
      "--store",
      "snaps",
      "--log-format=json",
    );
    assert.equal(missing.code, 2);
    const [usage, ...rest] = jsonLines(missing.stderr);
    assert.deepEqual(rest, []);
    assert.equal(usage.level, "error");
    assert.equal(usage.error, "InvalidArgumentError");
    assert.ok(usage.msg.includes('"no-such-stream"'), usage.msg);
    assert.equal(usage.stack, undefined);

    const unknown = await cli("frobnicate", "--log-format", "json", "--verbose");
    assert.equal(unknown.code, 2);
    const [line, ...more] = jsonLines(unknown.stderr);
    assert.deepEqual(more, []);
    assert.equal(line.error, "UsageError");
    assert.ok(line.msg.includes('"frobnicate"'));
    assert.match(String(line.stack), /UsageError/);

    // A failed status check: the table on stdout, one error object on stderr, exit 1.
    const status = await cli(
      "status",
      "--stream",
      stream,
      "--store",
      "snaps",
      "--log-format",
      "json",
    );
    assert.equal(status.code, 1);
    const [failed, ...others] = jsonLines(status.stderr);
    assert.deepEqual(others, []);
    assert.equal(failed.level, "error");
    assert.equal(failed.error, "StatusCheckError");
    assert.match(failed.msg, /^Cannot pass the status check .* has no snapshot/);
    assert.match(status.stdout, /^SHARD\s+STATE/);
  },
);

Deno.test("gc's summary is a JSON object with --log-format json", SHARES_EMULATORS, async () => {
  const { stream, cli } = await setup();
  assert.equal((await cli("snapshot", "--stream", stream, "--store", "snaps", "-q")).code, 0);
  const gc = await cli(
    "gc",
    "--stream",
    stream,
    "--store",
    "snaps",
    "--keep",
    "1",
    "--log-format",
    "json",
  );
  assert.equal(gc.code, 0, gc.stderr);
  const [summary, ...rest] = jsonLines(gc.stderr);
  assert.deepEqual(rest, []);
  assert.deepEqual([summary.level, summary.msg, summary.deleted, summary.kept], [
    "info",
    "deleted snapshots",
    0,
    2,
  ]);
});

Deno.test(
  "the default text format writes key=value records off a terminal",
  SHARES_EMULATORS,
  async () => {
    const { stream, cli } = await setup();
    const result = await cli("snapshot", "--stream", stream, "--store", "snaps");
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.ok(lines.length > 2);
    for (const line of lines) {
      assert.match(line, /^time=\S+Z level=(info|warn) msg="[^"]*"( \S+=\S+)*/);
    }
    assert.ok(lines.some((l) => l.includes('msg="progress"') && l.includes("phase=done")));
  },
);

Deno.test("jsonLine() keeps fields named like time, level or msg apart, and drops undefined", () => {
  const line = JSON.parse(jsonLine("warn", "hello", {
    msg: "field",
    level: 3,
    shard: "s",
    gone: undefined,
  }));
  assert.equal(line.msg, "hello");
  assert.equal(line.level, "warn");
  assert.equal(line["fields.msg"], "field");
  assert.equal(line["fields.level"], 3);
  assert.equal(line.shard, "s");
  assert.ok(!("gone" in line));
});
