/**
 * The long-running commands (`replicate` of a whole stream, `snapshot --follow`) when Kinesis
 * is not set up at all: a first listing of the stream's shards that no retry can fix (no
 * region, no credentials, no such stream) ends the command with one line and exit status 1, as every other
 * command does, instead of a warning every interval for ever.
 */
import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { type CleanResult, runCliCleanEnv } from "./support/clean_cli.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesis("streambolt-follow-setup-");
Deno.test.afterAll(() => emulators.stop());

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

/** Exit status `code` and one line on stderr naming each of `mentions`, no stack trace. */
function oneLine(result: CleanResult, code: number, ...mentions: string[]): void {
  assert.equal(
    result.code,
    code,
    `exit ${result.code}\nstdout: ${result.stdout}\n${result.stderr}`,
  );
  const lines = result.stderr.trim().split("\n").filter((l) => !/level=info/.test(l));
  assert.equal(lines.length, 1, `one line on stderr besides info logs, got:\n${result.stderr}`);
  assert.match(lines[0], /^streambolt: error: Cannot .+ as .+: current value is .+$/);
  for (const m of mentions) assert.ok(lines[0].includes(m), `"${m}" in: ${lines[0]}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
}

Deno.test("replicate of a whole stream without a region ends with one line", async () => {
  oneLine(
    await cli(KEYS, "replicate", "--stream", "orders", "--store", "snaps", "--out", "replica"),
    1,
    "Cannot reach Kinesis",
    "no AWS region",
  );
});

Deno.test("snapshot --follow without a region ends with one line", async () => {
  oneLine(
    await cli(KEYS, "snapshot", "--stream", "orders", "--store", "snaps", "--follow"),
    1,
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
    1,
    "Cannot reach Kinesis",
    "credentials",
  );
});

Deno.test(
  "replicate and snapshot --follow of a stream that does not exist end naming it",
  SHARES_EMULATORS,
  async () => {
    const { temp, env } = await emulators.get();
    const cwd = await Deno.makeTempDir({ dir: temp });
    const stream = uniqueName("no-such-stream");
    for (
      const args of [
        ["replicate", "--stream", stream, "--store", "snaps", "--out", "replica"],
        ["snapshot", "--stream", stream, "--store", "snaps", "--follow"],
      ]
    ) {
      // A --stream naming no stream is bad usage, as for every other command: exit status 2.
      oneLine(await runCli(args, { cwd, env }), 2, "does not exist", JSON.stringify(stream));
    }
  },
);
