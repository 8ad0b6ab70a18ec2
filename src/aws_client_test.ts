import assert from "node:assert/strict";
import { KinesisClient } from "@aws-sdk/client-kinesis";
import { S3Client } from "@aws-sdk/client-s3";
import type { KinesisClientLike, S3ClientLike } from "./aws_client.ts";
import { S3SnapshotStore } from "./store/s3_store.ts";
import { ShardSnapshotter } from "./shard_snapshotter.ts";
import { FileSnapshotStore } from "./store/file_store.ts";
import { kvGenerator } from "./generators/kv.ts";

// `deno test` type-checks this file first: each `@ts-expect-error` below must stay an error.
Deno.test("clients are typed per service: an S3Client is no Kinesis client, nor the reverse", () => {
  const kinesis = new KinesisClient({ region: "us-east-1" });
  const s3 = new S3Client({ region: "us-east-1" });
  try {
    const store = new FileSnapshotStore({ root: "./unused" });
    const common = { store, stream: "s", shardId: "shardId-0", localPath: "w" };
    const snapshotter = new ShardSnapshotter({ ...common, kinesis, generator: kvGenerator() });
    assert.ok(snapshotter instanceof ShardSnapshotter);
    // @ts-expect-error an S3Client is not a Kinesis client
    const wrongKinesis: KinesisClientLike = s3;
    // @ts-expect-error a KinesisClient is not an S3 client
    const wrongS3: S3ClientLike = kinesis;
    // @ts-expect-error the S3 store refuses a Kinesis client
    new S3SnapshotStore({ client: kinesis, bucket: "my-bucket" });
    assert.equal(new S3SnapshotStore({ client: s3, bucket: "my-bucket" }).url, "s3://my-bucket/");
    assert.notEqual(wrongKinesis, wrongS3);
  } finally {
    kinesis.destroy();
    s3.destroy();
  }
});

Deno.test("a command's output keeps its type through KinesisClientLike.send", async () => {
  const { GetRecordsCommand } = await import("@aws-sdk/client-kinesis");
  const client: KinesisClientLike = {
    // deno-lint-ignore require-await
    send: async <Output>() => ({ MillisBehindLatest: 7 }) as Output,
    config: { region: "fake" },
  };
  const out = await client.send(new GetRecordsCommand({ ShardIterator: "x" }));
  const lag: number | undefined = out.MillisBehindLatest;
  // @ts-expect-error the output is typed: MillisBehindLatest is a number
  const wrong: string = out.MillisBehindLatest;
  assert.equal(lag, 7);
  assert.equal(wrong, 7);
});
