/**
 * `streambolt download` into an `--out` it wrote to before: one file per shard stays there,
 * the point downloaded last. Against one kinesis-local shared by the cases, with a file store.
 */
import assert from "node:assert/strict";
import { basename, dirname, resolve } from "node:path";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import { type CliResult, runCli } from "./support/cli.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesis("streambolt-download-out-");
Deno.test.afterAll(() => emulators.stop());

function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}\nstdout: ${result.stdout}\n${result.stderr}`);
  return result;
}

async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** A one-shard stream snapshotted twice (full snapshots only) into a file store. */
async function twoPoints() {
  const { kinesis, writer, temp, env } = await emulators.get();
  const stream = uniqueName("dl");
  await createStream(kinesis, stream, 1);
  const shards = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  const shardId = shards.Shards![0].ShardId!;
  const cwd = await Deno.makeTempDir({ dir: temp });
  const cli = (...args: string[]) => runCli(args, { cwd, env });
  const common = ["--stream", stream, "--store", "snaps"];
  const snapshot = async (seed: number) => {
    await putRecords(writer, stream, makeRecords(20, { keys: 10, seed }));
    ok(await cli("snapshot", ...common, "--generator", "log", "--max-deltas", "0", "-q"));
  };
  await snapshot(1);
  const [first] = JSON.parse(ok(await cli("list", ...common, "--json")).stdout);
  await snapshot(2);
  const download = async (...extra: string[]) =>
    resolve(
      cwd,
      ok(await cli("download", ...common, "--shard", shardId, "--out", "dl", ...extra)).stdout
        .trim(),
    );
  return { first, download };
}

Deno.test(
  "download into an --out holding an earlier point keeps only the point downloaded last",
  SHARES_EMULATORS,
  async () => {
    const { first, download } = await twoPoints();
    const older = await download("--sequence", first.sequenceNumber);
    assert.deepEqual(await namesIn(dirname(older)), [basename(older)]);
    // A full snapshot of the newer point (no delta leads on from the older file).
    const newer = await download("--no-refresh");
    assert.notEqual(newer, older);
    assert.deepEqual(await namesIn(dirname(newer)), [basename(newer)]);
    // Back to the older point: the newer file goes.
    const again = await download("--sequence", first.sequenceNumber);
    assert.equal(again, older);
    assert.deepEqual(await namesIn(dirname(again)), [basename(again)]);
  },
);
