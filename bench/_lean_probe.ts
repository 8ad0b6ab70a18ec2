/**
 * A probe for figure 11's split of a run's fixed cost: run with the CLI's flags, it stops
 * after one stage of what `streambolt snapshot` does before its first request. `start`: the
 * runtime alone; `sdk`: the runtime plus the AWS SDK clients such a run uses (Kinesis, and S3
 * for an `s3://` store), imported and nothing else: the floor of any run that uses the SDK;
 * `modules`: plus loading every module such a run loads; `client`: plus
 * making the Kinesis client (and, for an `s3://` store, the S3 client) and resolving their
 * region and credentials, as the first request would.
 *
 * Usage: `_lean_probe.ts start|sdk|modules|client STORE_URL`
 *
 * @module
 */
const [stage, storeUrl] = Deno.args;
if (stage === "sdk") {
  await Promise.all([
    import("@aws-sdk/client-kinesis"),
    storeUrl.startsWith("s3://") ? import("@aws-sdk/client-s3") : undefined,
  ]);
} else if (stage !== "start") {
  const s3 = storeUrl.startsWith("s3://");
  const [{ makeKinesisClient, makeS3Client }] = await Promise.all([
    import("../src/cli/_aws.ts"),
    import("../cli.ts"),
    import("../src/cli/snapshot.ts"),
    s3 ? import("../src/store/s3_store.ts") : undefined,
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
