import assert from "node:assert/strict";
import type { KinesisClientLike } from "../aws_client.ts";
import { BOOTSTRAP_SEQUENCE } from "../snapshot.ts";
import { readShard } from "./shard_reader.ts";

const SHARD = "shardId-000000000000";

/**
 * A shard with one record: the first GetRecords returns it, the next one (the prefetch) answers
 * only when its request is aborted, by failing as the SDK does.
 */
function oneRecordThenWaiting(): KinesisClientLike {
  const send = (command: object, options?: { abortSignal?: AbortSignal }) => {
    const name = command.constructor.name;
    const input = (command as { input: Record<string, unknown> }).input;
    if (name === "GetShardIteratorCommand") return Promise.resolve({ ShardIterator: "first" });
    if (name === "GetRecordsCommand" && input.ShardIterator === "first") {
      return Promise.resolve({
        Records: [{ SequenceNumber: "1", PartitionKey: "k", Data: new Uint8Array([1]) }],
        NextShardIterator: "second",
        MillisBehindLatest: 0,
      });
    }
    return new Promise((_, reject) => {
      const abort = () => reject(new DOMException("Request aborted", "AbortError"));
      options?.abortSignal?.addEventListener("abort", abort, { once: true });
    });
  };
  return { send, config: { region: "test" } } as unknown as KinesisClientLike;
}

Deno.test("readShard(): stopping while the caller holds a page leaves no unhandled rejection", async () => {
  const stop = new AbortController();
  const pages = readShard(oneRecordThenWaiting(), {
    stream: "orders",
    shardId: SHARD,
    after: BOOTSTRAP_SEQUENCE,
    signal: stop.signal,
  });
  const first = await pages.next();
  assert.equal(first.value?.records.length, 1);
  // The caller is busy with the page (a producer publishing it) when the stop comes: the
  // prefetch in flight is aborted, and its rejection must be handled by the reader.
  stop.abort();
  await new Promise((resolve) => setTimeout(resolve, 0));
  await pages.return(undefined);
});
