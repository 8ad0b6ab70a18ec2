/**
 * A probe for figure 11's split of a run's fixed cost: run with the CLI's flags, it stops
 * after one stage of what `streambolt snapshot` does before its first request. `start`: the
 * runtime alone; `sdk`: the runtime plus the AWS SDK clients such a run uses (Kinesis, and S3
 * for an `s3://` store), imported and nothing else: the floor of any run that uses the SDK;
 * `requests`: plus the requests a run with nothing to do makes (ListShards, GetShardIterator,
 * GetRecords; for an `s3://` store the LIST of the shard's prefix and the HEAD of its latest
 * object), through plain SDK clients and nothing of streambolt: the floor of a run that has to
 * ask whether there is anything new; `modules`: the runtime plus every module such a run
 * loads; `client`: plus making the Kinesis client (and, for an `s3://` store, the S3 client)
 * and resolving their region and credentials, as the first request would.
 *
 * Every import is made through {@linkcode load}, by a specifier Deno cannot read ahead of time:
 * Deno loads the module graph of every dynamic import it can read when the process starts,
 * executed or not (an unexecuted `import("../cli.ts")` costs a process ~6 MB and the SDK's S3
 * client ~2.5 MB), so each stage would otherwise carry the graphs of the stages after it.
 *
 * Usage: `_lean_probe.ts start|sdk|requests|modules|client STORE_URL [STREAM SHARD]`
 *
 * @module
 */
import type * as KinesisSdk from "@aws-sdk/client-kinesis";
import type * as S3Sdk from "@aws-sdk/client-s3";
import type * as HttpHandler from "@smithy/node-http-handler";
import type * as Aws from "../src/cli/_aws.ts";

const [stage, storeUrl, stream, shardId] = Deno.args;
const s3 = storeUrl?.startsWith("s3://") ?? false;

/** Imports `specifier`, unseen by Deno's graph until this stage asks for it. */
function load<T>(specifier: string): Promise<T> {
  return import(specifier.startsWith(".") ? new URL(specifier, import.meta.url).href : specifier);
}

if (stage === "sdk") {
  await Promise.all([
    load("@aws-sdk/client-kinesis"),
    s3 ? load("@aws-sdk/client-s3") : undefined,
  ]);
} else if (stage === "requests") {
  await requests();
} else if (stage !== "start") {
  const [{ makeKinesisClient, makeS3Client }] = await Promise.all([
    load<typeof Aws>("../src/cli/_aws.ts"),
    load("../cli.ts"),
    load("../src/cli/snapshot.ts"),
    s3 ? load("../src/store/s3_store.ts") : undefined,
  ]);
  if (stage === "client") {
    const kinesis = makeKinesisClient();
    await kinesis.config.credentials();
    await kinesis.config.region();
    if (s3) {
      const client = await makeS3Client();
      await client.config.credentials();
      client.destroy();
    }
    kinesis.destroy();
  }
}

/** The requests of a run with nothing to do, through plain SDK clients. */
async function requests(): Promise<void> {
  if (!stream || !shardId) throw new Error("requests: STREAM and SHARD are required");
  const sdk = await load<typeof KinesisSdk>("@aws-sdk/client-kinesis");
  const s3Sdk = s3 ? await load<typeof S3Sdk>("@aws-sdk/client-s3") : undefined;
  const { NodeHttpHandler } = await load<typeof HttpHandler>("@smithy/node-http-handler");
  // The handler the CLI's clients are given (timeouts); otherwise the SDK's defaults.
  const requestHandler = () =>
    new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 60_000 });
  const kinesis = new sdk.KinesisClient({ requestHandler: requestHandler() });
  const store = s3Sdk
    ? new s3Sdk.S3Client({ forcePathStyle: true, requestHandler: requestHandler() })
    : undefined;
  try {
    const { Shards } = await kinesis.send(new sdk.ListShardsCommand({ StreamName: stream }));
    if (!Shards?.some((s) => s.ShardId === shardId)) throw new Error(`no shard ${shardId}`);
    if (s3Sdk && store) {
      const [bucket, ...rest] = storeUrl.slice("s3://".length).split("/");
      const prefix = [...rest.filter(Boolean), stream, shardId, ""].join("/");
      const listed = await store.send(
        new s3Sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }),
      );
      const last = listed.Contents?.at(-1)?.Key;
      if (!last) throw new Error(`nothing stored under s3://${bucket}/${prefix}`);
      await store.send(new s3Sdk.HeadObjectCommand({ Bucket: bucket, Key: last }));
    }
    const { ShardIterator } = await kinesis.send(
      new sdk.GetShardIteratorCommand({
        StreamName: stream,
        ShardId: shardId,
        ShardIteratorType: "LATEST",
      }),
    );
    const page = await kinesis.send(new sdk.GetRecordsCommand({ ShardIterator }));
    if (!page.Records) throw new Error("GetRecords returned no Records");
  } finally {
    kinesis.destroy();
    store?.destroy();
  }
}
