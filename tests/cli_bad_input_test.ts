/**
 * Bad values a newcomer gives the CLI by hand, found by following the README: each gets one
 * line naming the value, exit status 2, and no stack trace, before anything is read or written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, runCli } from "./support/cli.ts";

/** Exit status 2 and one line on stderr in the house style, naming `value`. */
function usageLine(result: CliResult, value: string): string {
  assert.equal(result.code, 2, `exit ${result.code}\nstderr: ${result.stderr}`);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], /^streambolt: error: Cannot .+ as .+: current value is /);
  assert.ok(lines[0].includes(JSON.stringify(value)), lines[0]);
  return lines[0];
}

Deno.test("download --out naming a file, not a directory, is named", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-bad-input-" });
  try {
    await Deno.writeTextFile(join(cwd, "notes.txt"), "mine\n");
    const result = await runCli([
      "download",
      "--stream",
      "orders",
      "--shard",
      "shardId-000000000000",
      "--store",
      "./snaps",
      "--out",
      "./notes.txt",
    ], { cwd });
    assert.match(usageLine(result, "./notes.txt"), /--out/);
    assert.equal(await Deno.readTextFile(join(cwd, "notes.txt")), "mine\n");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
