import assert from "node:assert/strict";
import type { KinesisClientLike } from "../aws_client.ts";
import { InvalidArgumentError } from "../errors.ts";
import { listStreamShards } from "./list_shards.ts";
import { streamRetentionHours } from "./retention.ts";

/** A client that fails the first `failures` calls with `error`, then answers with `answer`. */
function flaky(failures: number, error: Error, answer: unknown) {
  let calls = 0;
  const client = {
    config: { region: "fake" },
    send: () => ++calls <= failures ? Promise.reject(error) : Promise.resolve(answer),
  } as unknown as KinesisClientLike;
  return { client, calls: () => calls };
}

const throttled = () =>
  Object.assign(new Error("slow down"), {
    name: "ProvisionedThroughputExceededException",
    $metadata: { httpStatusCode: 400 },
  });

const fast = { baseDelayMs: 1, maxDelayMs: 2 };

Deno.test("listStreamShards() retries throttled ListShards calls within its budget", async () => {
  const page = {
    Shards: [{ ShardId: "shardId-0", HashKeyRange: { StartingHashKey: "0", EndingHashKey: "9" } }],
  };
  const ok = flaky(2, throttled(), page);
  const shards = await listStreamShards(ok.client, "s", { retry: fast });
  assert.deepEqual(shards.map((s) => s.shardId), ["shardId-0"]);
  assert.equal(ok.calls(), 3);
  const endless = flaky(100, throttled(), page);
  await assert.rejects(
    listStreamShards(endless.client, "s", { retry: { ...fast, maxAttempts: 4 } }),
    /slow down/,
  );
  assert.equal(endless.calls(), 4, "one budget: 4 attempts, no more");
});

Deno.test("listStreamShards() does not retry a missing stream, and names it", async () => {
  const missing = flaky(
    100,
    Object.assign(new Error("not found"), {
      name: "ResourceNotFoundException",
      $metadata: { httpStatusCode: 400 },
    }),
    {},
  );
  await assert.rejects(
    listStreamShards(missing.client, "nope", { retry: fast }),
    (error: Error) => error instanceof InvalidArgumentError && /"nope"/.test(error.message),
  );
  assert.equal(missing.calls(), 1);
});

Deno.test("streamRetentionHours() reads the retention, retrying throttled calls", async () => {
  const ok = flaky(1, throttled(), { StreamDescriptionSummary: { RetentionPeriodHours: 168 } });
  assert.equal(await streamRetentionHours(ok.client, "s"), 168);
  assert.equal(ok.calls(), 2);
});
