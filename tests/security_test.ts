import assert from "node:assert/strict";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { S3SnapshotStore, ShardSnapshotFinder } from "../mod.ts";
import { type CliResult, runCli } from "./support/cli.ts";
import {
  createBucket,
  createStream,
  kinesisClient,
  s3Client,
  startKinesis,
  startS3,
  TEST_REGION,
} from "./support/emulators.ts";
import { exists } from "./support/snapshots.ts";

Deno.test("security: hostile keys, credentials, encryption headers", async (t) => {
  const s3Emu = await startS3();
  const s3 = s3Client(s3Emu.endpoint);
  const temp = await Deno.makeTempDir({ prefix: "streambolt-security-" });
  try {
    await t.step("keys from the store are never trusted as paths", async () => {
      await createBucket(s3, "hostile");
      const hostile = [
        "orders/shardId-000000000000/../../../../escaped/9.sqlite.zst",
        "orders/../shardId-000000000000/9.sqlite.zst",
        "orders/shardId-000000000000/..%2F..%2Fescaped.sqlite.zst",
        "orders/shardId-000000000000/9.sqlite.zst/../../x",
        "orders/shardId-000000000000//9.sqlite.zst",
        "orders/shardId-000000000000/9\\..\\x.sqlite.zst",
        "/orders/shardId-000000000000/9.sqlite.zst",
      ];
      for (const key of hostile) {
        await s3.send(
          new PutObjectCommand({ Bucket: "hostile", Key: key, Body: new Uint8Array([1]) }),
        );
      }
      const store = new S3SnapshotStore({ client: s3, bucket: "hostile" });
      assert.ok((await Array.fromAsync(store.list(""))).length >= hostile.length - 1);
      const local = join(temp, "local");
      const finder = new ShardSnapshotFinder({
        store,
        stream: "orders",
        shardId: "shardId-000000000000",
        localPath: local,
      });
      assert.deepEqual(await finder.findSnapshots(), []);
      assert.equal(await finder.downloadLatestSnapshot(), undefined);
      assert.equal(await exists(join(temp, "escaped")), false);
      assert.equal(await exists(local), false, "nothing written at all");
    });

    await t.step("credentials never appear in output, errors, --json or JSON logs", async () => {
      const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
      const keyId = "AKIASTREAMBOLTTEST01";
      const token = "FQoGZXIvYXdzESSIONTOKENVALUE";
      const cwd = await Deno.makeTempDir({ dir: temp });
      const env = {
        AWS_ACCESS_KEY_ID: keyId,
        AWS_SECRET_ACCESS_KEY: secret,
        AWS_SESSION_TOKEN: token,
        AWS_REGION: TEST_REGION,
        AWS_ENDPOINT_URL_S3: s3Emu.endpoint,
        AWS_ENDPOINT_URL_KINESIS: "http://127.0.0.1:9", // nothing listens: a connection error
      };
      const leaksNothing = (args: string[], result: CliResult) => {
        const what = args.join(" ");
        for (const value of [secret, keyId, token]) {
          assert.ok(!result.stdout.includes(value), `${what}: stdout leaks a credential`);
          assert.ok(!result.stderr.includes(value), `${what}: stderr leaks a credential`);
        }
        if (args.some((a) => a.startsWith("--log-format"))) {
          assert.notEqual(result.stderr.trim(), "", `${what}: logs something`);
          for (const line of result.stderr.trim().split("\n")) {
            assert.doesNotThrow(() => JSON.parse(line), `${what}: not JSON: ${line}`);
          }
        }
      };
      const runs = [
        ["list", "--stream", "orders", "--store", "s3://hostile", "--json"],
        ["list", "--stream", "orders", "--store", "s3://no-such-bucket-here", "--verbose"],
        [
          "latest",
          "--stream",
          "orders",
          "--shard",
          "shardId-000000000000",
          "--store",
          "s3://hostile",
        ],
        ["snapshot", "--stream", "orders", "--store", "s3://hostile", "--verbose"],
        ["gc", "--stream", "orders", "--store", "s3://hostile", "--keep", "1", "--json"],
        ["status", "--stream", "orders", "--store", "s3://hostile", "--json", "--verbose"],
        // JSON logs: every line an object, the failing one with its stack under --verbose.
        [
          "list",
          "--stream",
          "orders",
          "--store",
          "s3://no-such-bucket-here",
          "--verbose",
          "--log-format",
          "json",
        ],
        [
          "snapshot",
          "--stream",
          "orders",
          "--store",
          "s3://hostile",
          "--verbose",
          "--log-format",
          "json",
        ],
        [
          "status",
          "--stream",
          "orders",
          "--store",
          "s3://hostile",
          "--json",
          "--verbose",
          "--log-format=json",
        ],
        [
          "gc",
          "--stream",
          "orders",
          "--store",
          "s3://hostile",
          "--keep",
          "1",
          "--log-format",
          "json",
        ],
      ];
      for (const args of runs) leaksNothing(args, await runCli(args, { cwd, env }));

      // status against a live stream: the HEADs, the retention warning and the failed check,
      // as JSON lines with --verbose.
      const kinesisEmu = await startKinesis();
      const kinesis = kinesisClient(kinesisEmu.endpoint);
      try {
        await createStream(kinesis, "orders", 2);
        const file = join(temp, "point.bin");
        await Deno.writeFile(file, new Uint8Array([1]));
        await new S3SnapshotStore({ client: s3, bucket: "hostile" }).put(
          "orders/shardId-000000000000/5.sqlite.zst",
          file,
          {
            metadata: {
              "records-applied": "5",
              "last-arrival-at": new Date(Date.now() - 13 * 3_600_000).toISOString(),
            },
          },
        );
        const args = [
          "status",
          "--stream",
          "orders",
          "--store",
          "s3://hostile",
          "--json",
          "--verbose",
          "--log-format",
          "json",
        ];
        const live = { ...env, AWS_ENDPOINT_URL_KINESIS: kinesisEmu.endpoint };
        const result = await runCli(args, { cwd, env: live });
        leaksNothing(args, result);
        assert.equal(result.code, 1, result.stderr);
        const levels = result.stderr.trim().split("\n").map((l) => JSON.parse(l).level);
        assert.deepEqual(levels, ["warn", "error"], result.stderr);
        assert.equal(JSON.parse(result.stdout).shards[0].recordsApplied, 5);
      } finally {
        kinesis.destroy();
        await kinesisEmu.stop();
      }
    });

    await t.step(
      "uploads request server-side encryption and the expected bucket owner",
      async () => {
        await createBucket(s3, "encrypted");
        const seen: Array<{ command: string; headers: Record<string, string> }> = [];
        const client = s3Client(s3Emu.endpoint);
        client.middlewareStack.add(
          (next, context) => async (args) => {
            const request = (args as { request: { headers: Record<string, string> } }).request;
            seen.push({ command: context.commandName ?? "", headers: { ...request.headers } });
            return await next(args);
          },
          { step: "finalizeRequest", priority: "low", name: "captureHeaders" },
        );
        try {
          const small = join(temp, "small.bin");
          const large = join(temp, "large.bin");
          await Deno.writeFile(small, new Uint8Array(1_000));
          await Deno.writeFile(large, new Uint8Array(12 * 1024 * 1024));
          for (
            const [sse, kmsKey] of [["AES256", undefined], ["aws:kms", "alias/snapshots"]] as const
          ) {
            seen.length = 0;
            const store = new S3SnapshotStore({
              client,
              bucket: "encrypted",
              serverSideEncryption: sse,
              sseKmsKeyId: kmsKey,
              expectedBucketOwner: "111122223333",
              partSize: 5 * 1024 * 1024,
            });
            await store.put(`s/a/${sse}-small`, small, { metadata: {} }).catch(() => {});
            await store.put(`s/a/${sse}-large`, large, { metadata: {} }).catch(() => {});
            const starts = seen.filter((s) =>
              s.command === "PutObjectCommand" || s.command === "CreateMultipartUploadCommand"
            );
            assert.equal(starts.length, 2, JSON.stringify(seen.map((s) => s.command)));
            for (const s of starts) {
              assert.equal(s.headers["x-amz-server-side-encryption"], sse, s.command);
              assert.equal(s.headers["x-amz-server-side-encryption-aws-kms-key-id"], kmsKey);
            }
            for (const s of seen) {
              assert.equal(s.headers["x-amz-expected-bucket-owner"], "111122223333", s.command);
            }
          }
        } finally {
          client.destroy();
        }
      },
    );
  } finally {
    s3.destroy();
    await s3Emu.stop();
    await Deno.remove(temp, { recursive: true });
  }
});
