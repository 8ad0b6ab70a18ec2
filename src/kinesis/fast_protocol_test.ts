import {
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ProvisionedThroughputExceededException,
} from "@aws-sdk/client-kinesis";
import assert from "node:assert/strict";
import { KinesisFastProtocol } from "./fast_protocol.ts";

/** One canned HTTP response, served for every request. */
interface Canned {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** Serves `canned` on loopback while `use` runs with a plain client and a fast one. */
async function withServer(
  canned: Canned,
  use: (plain: KinesisClient, fast: KinesisClient) => Promise<void>,
): Promise<void> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response(canned.body, {
        status: canned.status,
        headers: {
          "content-type": "application/x-amz-json-1.1",
          "x-amzn-RequestId": "req-1",
          "x-amz-id-2": "ext-2",
          ...canned.headers,
        },
      }),
  );
  const config = {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  };
  const plain = new KinesisClient(config);
  const fast = new KinesisClient({ ...config, protocol: KinesisFastProtocol });
  try {
    await use(plain, fast);
  } finally {
    plain.destroy();
    fast.destroy();
    await server.shutdown();
  }
}

const iterator = { ShardIterator: "it-1" };

/** What `call` rejects with (it must reject). */
async function rejection(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (error) {
    return error as Error;
  }
  throw new Error("Cannot see a rejection as the call resolved");
}

/** The outputs of both clients for one canned body. */
async function bothOutputs(body: string): Promise<[unknown, unknown]> {
  let outputs: [unknown, unknown] = [undefined, undefined];
  await withServer({ status: 200, body }, async (plain, fast) => {
    outputs = [
      await plain.send(new GetRecordsCommand(iterator)),
      await fast.send(new GetRecordsCommand(iterator)),
    ];
  });
  return outputs;
}

const base64 = (text: string) => new TextEncoder().encode(text).toBase64();

Deno.test("the fast protocol reads a GetRecords page as the SDK does, field by field", async () => {
  const body = JSON.stringify({
    Records: [
      {
        SequenceNumber: "4959",
        Data: base64('{"k":1}'),
        ApproximateArrivalTimestamp: 1733097600.123,
        PartitionKey: "a",
        EncryptionType: "KMS",
      },
      { SequenceNumber: "4960", Data: "", PartitionKey: "b", ApproximateArrivalTimestamp: 17 },
      { SequenceNumber: "4961", Data: base64("\u00ff\u0000x"), PartitionKey: "c" },
      { SequenceNumber: "4962", Data: null, PartitionKey: "d", EncryptionType: null, Extra: 1 },
    ],
    NextShardIterator: "it-2",
    MillisBehindLatest: 1234,
    Unknown: { nested: true },
  });
  const [plain, fast] = await bothOutputs(body);
  assert.deepStrictEqual(fast, plain);
  const records = (fast as { Records: { Data?: Uint8Array }[] }).Records;
  assert.deepStrictEqual(new TextDecoder().decode(records[0].Data), '{"k":1}');
  assert.deepStrictEqual(
    (fast as { $metadata: { requestId: string } }).$metadata.requestId,
    "req-1",
  );
});

Deno.test("the fast protocol reads child shards and a closed shard's last page as the SDK does", async () => {
  const body = JSON.stringify({
    Records: [],
    MillisBehindLatest: 0,
    ChildShards: [
      {
        ShardId: "shardId-000000000001",
        ParentShards: ["shardId-000000000000"],
        HashKeyRange: {
          StartingHashKey: "0",
          EndingHashKey: "170141183460469231731687303715884105727",
        },
      },
      {
        ShardId: "shardId-000000000002",
        ParentShards: ["shardId-000000000000", "shardId-000000000003"],
        HashKeyRange: { StartingHashKey: "170141183460469231731687303715884105728", Other: 1 },
      },
    ],
  });
  const [plain, fast] = await bothOutputs(body);
  assert.deepStrictEqual(fast, plain);
});

Deno.test("the fast protocol matches the SDK on empty and irregular bodies", async () => {
  for (
    const body of [
      "",
      "{}",
      JSON.stringify({ Records: null, NextShardIterator: null }),
      JSON.stringify({ Records: [{ Data: 5, ApproximateArrivalTimestamp: "12.5" }] }),
      JSON.stringify({ Records: [], MillisBehindLatest: "NaN", __type: "x", More: 1 }),
    ]
  ) {
    const [plain, fast] = await bothOutputs(body);
    assert.deepStrictEqual(fast, plain, `body ${body}`);
  }
});

Deno.test("the fast protocol refuses a bad Data field as the SDK does", async () => {
  for (const data of ["abc", "a*==", "YQ"]) {
    const body = JSON.stringify({ Records: [{ SequenceNumber: "1", Data: data }] });
    await withServer({ status: 200, body }, async (plain, fast) => {
      const expected = await rejection(() => plain.send(new GetRecordsCommand(iterator)));
      const error = await rejection(() => fast.send(new GetRecordsCommand(iterator)));
      assert.deepStrictEqual(error.name, expected.name);
    });
  }
});

Deno.test("the fast protocol leaves other operations to the SDK", async () => {
  const body = JSON.stringify({ ShardIterator: "it-9" });
  await withServer({ status: 200, body }, async (plain, fast) => {
    const command = { StreamName: "s", ShardId: "shardId-0", ShardIteratorType: "LATEST" } as const;
    assert.deepStrictEqual(
      await fast.send(new GetShardIteratorCommand(command)),
      await plain.send(new GetShardIteratorCommand(command)),
    );
  });
});

for (
  const [type, ErrorClass] of [
    ["ExpiredIteratorException", ExpiredIteratorException],
    ["ProvisionedThroughputExceededException", ProvisionedThroughputExceededException],
  ] as const
) {
  Deno.test(`a GetRecords ${type} through the fast protocol is the SDK's error`, async () => {
    const body = JSON.stringify({ __type: type, message: "Iterator expired or throttled" });
    await withServer({ status: 400, body }, async (plain, fast) => {
      const expected = await rejection(() => plain.send(new GetRecordsCommand(iterator)));
      const error = await rejection(() => fast.send(new GetRecordsCommand(iterator)));
      assert.ok(error instanceof ErrorClass, `${error}`);
      assert.deepStrictEqual(error, expected);
      assert.deepStrictEqual(
        (error as ProvisionedThroughputExceededException).$metadata,
        (expected as ProvisionedThroughputExceededException).$metadata,
      );
    });
  });
}
