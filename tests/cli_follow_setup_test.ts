/**
 * The long-running commands (`replicate` of a whole stream, `snapshot --follow`) when Kinesis
 * is not set up at all: a first listing of the stream's shards that no retry can fix (no
 * region, no credentials) ends the command with one line and exit status 1, as every other
 * command does, instead of a warning every interval for ever.
 */
import assert from "node:assert/strict";
import { type CleanResult, runCliCleanEnv } from "./support/clean_cli.ts";

const KEYS = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" };

/** Runs the CLI in a fresh folder that is also HOME, with only `env`. */
async function cli(env: Record<string, string>, ...args: string[]): Promise<CleanResult> {
  const home = await Deno.makeTempDir({ prefix: "streambolt-follow-setup-" });
  try {
    return await runCliCleanEnv(args, { home, env });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/** Exit status 1 and one line on stderr naming each of `mentions`, no stack trace. */
function oneLine(result: CleanResult, ...mentions: string[]): void {
  assert.equal(result.code, 1, `exit ${result.code}\nstdout: ${result.stdout}\n${result.stderr}`);
  const lines = result.stderr.trim().split("\n").filter((l) => !/level=info/.test(l));
  assert.equal(lines.length, 1, `one line on stderr besides info logs, got:\n${result.stderr}`);
  assert.match(lines[0], /^streambolt: error: Cannot .+ as .+: current value is .+$/);
  for (const m of mentions) assert.ok(lines[0].includes(m), `"${m}" in: ${lines[0]}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
}

Deno.test("replicate of a whole stream without a region ends with one line", async () => {
  oneLine(
    await cli(KEYS, "replicate", "--stream", "orders", "--store", "snaps", "--out", "replica"),
    "Cannot reach Kinesis",
    "no AWS region",
  );
});

Deno.test("snapshot --follow without a region ends with one line", async () => {
  oneLine(
    await cli(KEYS, "snapshot", "--stream", "orders", "--store", "snaps", "--follow"),
    "Cannot reach Kinesis",
    "no AWS region",
  );
});

Deno.test("replicate of a whole stream without credentials ends with one line", async () => {
  oneLine(
    await cli(
      { AWS_REGION: "eu-west-1" },
      "replicate",
      "--stream",
      "orders",
      "--store",
      "snaps",
      "--out",
      "replica",
    ),
    "Cannot reach Kinesis",
    "credentials",
  );
});
