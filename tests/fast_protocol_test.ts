/**
 * The fast GetRecords protocol against kinesis-local: every page of a shard holding plain and
 * KPL-aggregated records, read up to its end after a split (ChildShards), is the page the SDK's
 * own protocol reads; an error GetRecords is the SDK's error.
 */
import assert from "node:assert/strict";
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  KinesisClient,
  PutRecordCommand,
  SplitShardCommand,
  waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";
import { KinesisFastProtocol } from "../src/kinesis/fast_protocol.ts";
import { deaggregate } from "../src/kinesis/kpl.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import {
  createStream,
  TEST_CREDENTIALS,
  TEST_REGION,
  testRequestHandler,
} from "./support/emulators.ts";
import { sharedKinesis, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";
import { aggregate } from "./support/kpl.ts";

const emulators = sharedKinesis("streambolt-fast-protocol-");
Deno.test.afterAll(() => emulators.stop());

/** A client like the fixture's reader, with the fast protocol. */
function fastClient(endpoint: string): KinesisClient {
  return new KinesisClient({
    endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    requestHandler: testRequestHandler(),
    maxAttempts: 5,
    protocol: KinesisFastProtocol,
  });
}

/** Every GetRecords page of a closed shard from its start, up to the page naming its children. */
async function pages(
  kinesis: KinesisClient,
  stream: string,
  shardId: string,
): Promise<GetRecordsCommandOutput[]> {
  const start = await kinesis.send(
    new GetShardIteratorCommand({
      StreamName: stream,
      ShardId: shardId,
      ShardIteratorType: "TRIM_HORIZON",
    }),
  );
  const out: GetRecordsCommandOutput[] = [];
  let iterator = start.ShardIterator;
  while (iterator) {
    const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 300 }));
    out.push(page);
    iterator = page.NextShardIterator;
    if (out.length > 100) throw new Error("Cannot reach the shard's end as it has no end");
  }
  return out;
}

/** A page without what differs between two reads of it (request ids, iterators). */
function comparable(page: GetRecordsCommandOutput): unknown {
  const { $metadata, NextShardIterator, ...rest } = page;
  return { ...rest, status: $metadata.httpStatusCode, next: NextShardIterator !== undefined };
}

Deno.test(
  "the fast protocol reads plain and KPL-aggregated records and ChildShards as the SDK does",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, kinesisEmulator } = await emulators.get();
    const stream = uniqueName("fast");
    await createStream(kinesis, stream, 1);
    await putRecords(writer, stream, makeRecords(700, { keys: 50, seed: 7 }));
    const users = makeRecords(120, { keys: 30, seed: 8, prefix: "agg" });
    for (const record of await aggregate(users)) {
      await writer.send(
        new PutRecordCommand({
          StreamName: stream,
          PartitionKey: record.partitionKey,
          ExplicitHashKey: record.explicitHashKey,
          Data: record.data,
        }),
      );
    }
    const shardId = "shardId-000000000000";
    await kinesis.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: shardId,
        NewStartingHashKey: (2n ** 127n).toString(),
      }),
    );
    await waitUntilStreamExists({ client: kinesis, maxWaitTime: 60, minDelay: 1 }, {
      StreamName: stream,
    });

    const fast = fastClient(kinesisEmulator.endpoint);
    try {
      const sdk = await pages(kinesis, stream, shardId);
      const ours = await pages(fast, stream, shardId);
      assert.deepStrictEqual(ours.map(comparable), sdk.map(comparable));
      const records = ours.flatMap((p) => p.Records ?? []);
      assert.ok(records.length > 700, `${records.length} records`);
      assert.ok(records.every((r) => r.ApproximateArrivalTimestamp instanceof Date));
      const children = ours.at(-1)?.ChildShards ?? [];
      assert.equal(children.length, 2);
      assert.deepStrictEqual(children[0].ParentShards, [shardId]);
      const userRecords = records.slice(700).flatMap((r) =>
        deaggregate({
          sequenceNumber: r.SequenceNumber!,
          partitionKey: r.PartitionKey!,
          data: r.Data!,
        })
      );
      assert.deepStrictEqual(
        userRecords.map((u) => new TextDecoder().decode(u.data)),
        users.map((u) => new TextDecoder().decode(u.data)),
      );
    } finally {
      fast.destroy();
    }
  },
);

Deno.test(
  "a GetRecords the emulator refuses is the same SDK error through the fast protocol",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, kinesisEmulator } = await emulators.get();
    const fast = fastClient(kinesisEmulator.endpoint);
    const refusal = async (client: KinesisClient) => {
      try {
        await client.send(new GetRecordsCommand({ ShardIterator: "not-an-iterator" }));
      } catch (error) {
        return error as Error & { $metadata: { httpStatusCode?: number } };
      }
      throw new Error("Cannot see a refusal as GetRecords succeeded");
    };
    try {
      const expected = await refusal(kinesis);
      const error = await refusal(fast);
      assert.equal(error.constructor, expected.constructor);
      assert.equal(error.name, expected.name);
      assert.equal(error.$metadata.httpStatusCode, expected.$metadata.httpStatusCode);
    } finally {
      fast.destroy();
    }
  },
);
