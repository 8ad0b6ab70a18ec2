import assert from "node:assert/strict";
import { join } from "node:path";
import { FileSnapshotStore, kvGenerator, type SnapshotStore, StreamSnapshotter } from "../mod.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesis("streambolt-lean-");
Deno.test.afterAll(() => emulators.stop());

/** A file store that records the prefix of every listing. */
function countingStore(root: string): { store: SnapshotStore; lists: string[] } {
  const lists: string[] = [];
  const inner = new FileSnapshotStore({ root });
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === "list") {
        return (prefix: string, options?: { signal?: AbortSignal }) => {
          lists.push(prefix);
          return target.list(prefix, options);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store, lists };
}

Deno.test({
  name:
    "a stream run without resharding lists the store once per shard, not once more for the stream",
  ...SHARES_EMULATORS,
  fn: async () => {
    const e = await emulators.get();
    const stream = uniqueName("lean");
    await createStream(e.kinesis, stream, 1);
    await putRecords(e.writer, stream, makeRecords(20, { seed: 3 }));
    const dir = await Deno.makeTempDir({ dir: e.temp });
    const { store, lists } = countingStore(join(dir, "store"));
    const run = () =>
      new StreamSnapshotter({
        kinesis: e.kinesis,
        store,
        stream,
        localPath: join(dir, "work"),
        generator: kvGenerator(),
      }).snapshotStream();
    const [first] = await run();
    assert.equal(first.shardId, "shardId-000000000000");
    await putRecords(e.writer, stream, makeRecords(5, { seed: 4 }));
    lists.length = 0;
    const [second] = await run();
    assert.notEqual(second.sequenceNumber, first.sequenceNumber);
    // Publishing: the shard's listing to find its base, and the one that notices forks.
    assert.ok(
      lists.every((prefix) => prefix.includes("shardId-000000000000")),
      `a listing of the whole stream: ${JSON.stringify(lists)}`,
    );
    lists.length = 0;
    const [third] = await run();
    assert.equal(third.key, second.key, "nothing to do: nothing published");
    assert.equal(lists.length, 1, `listings with nothing to do: ${JSON.stringify(lists)}`);
  },
});
