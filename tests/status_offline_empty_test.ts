/**
 * `streambolt status` when Kinesis cannot be reached and the store holds nothing of the stream
 * (a mistyped stream or store, a producer that never ran): the check has nothing to judge, and
 * a health check that then passes would hide exactly those mistakes. It fails, saying so.
 */
import assert from "node:assert/strict";
import { runCliCleanEnv } from "./support/clean_cli.ts";

Deno.test("status without Kinesis and with nothing stored fails, naming the stream", async () => {
  const home = await Deno.makeTempDir({ prefix: "streambolt-status-empty-" });
  try {
    await Deno.mkdir(`${home}/snaps`);
    const result = await runCliCleanEnv(
      ["status", "--stream", "typo-stream", "--store", "snaps", "--max-age", "15m"],
      { home, env: { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" } },
    );
    assert.equal(result.code, 1, `stdout: ${result.stdout}\nstderr: ${result.stderr}`);
    const errors = result.stderr.split("\n").filter((l) => l.startsWith("streambolt: error:"));
    assert.equal(errors.length, 1, result.stderr);
    assert.match(errors[0], /typo-stream/);
    assert.match(errors[0], /no snapshot/);
    assert.match(errors[0], /current value is .*snaps/);
    assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
