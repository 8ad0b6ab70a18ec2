/**
 * What the CLI says when its environment is not set up: no AWS region, no credentials, an
 * endpoint where nothing answers, a bucket that does not exist. Each ends in one line in the
 * house style naming what is missing and how to set it, exit status 1, no stack trace. The
 * CLI runs with exactly the cli task's permissions and an environment of our own (no AWS
 * variables of the machine's, HOME an empty folder, so no shared config or credentials file).
 */
import assert from "node:assert/strict";
import { type CleanResult, closedPort, runCliCleanEnv } from "./support/clean_cli.ts";
import { isRetryable } from "../src/kinesis/retry.ts";
import { createBucket } from "./support/emulators.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS, uniqueName } from "./support/fixture.ts";

const emulators = sharedKinesisAndS3("streambolt-cli-errors-");
Deno.test.afterAll(() => emulators.stop());

/** Runs the CLI in a fresh folder that is also HOME, with only `env` (and what Deno needs). */
async function cli(env: Record<string, string>, ...args: string[]): Promise<CleanResult> {
  const { temp } = await emulators.get();
  return await runCliCleanEnv(args, { home: await Deno.makeTempDir({ dir: temp }), env });
}

/** Exit status 1, one line on stderr in the house style, naming each of `mentions`. */
function oneLine(result: CleanResult, ...mentions: string[]): void {
  assert.equal(result.code, 1, `exit ${result.code}\nstdout: ${result.stdout}\n${result.stderr}`);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], /^streambolt: error: Cannot .+ as .+: current value is .+$/);
  for (const m of mentions) assert.ok(lines[0].includes(m), `"${m}" in: ${lines[0]}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
}

const KEYS = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" };

Deno.test("a bucket that does not exist is named", SHARES_EMULATORS, async () => {
  const { s3, s3Emulator } = await emulators.get();
  const bucket = uniqueName("there");
  await createBucket(s3, bucket); // the emulator answers; the bucket asked for is another
  const env = { ...KEYS, AWS_REGION: "us-east-1", AWS_ENDPOINT_URL_S3: s3Emulator.endpoint };
  oneLine(
    await cli(env, "list", "--stream", "orders", "--store", "s3://not-there-1/snaps"),
    "Cannot list s3://not-there-1/snaps/orders/",
    "the bucket does not exist",
    "current value is not-there-1",
  );
});

/** The Kinesis command and the S3 one each case runs. */
const KINESIS = ["snapshot", "--stream", "orders", "--store", "snaps"];
const S3 = ["list", "--stream", "orders", "--store", "s3://some-bucket/snaps"];

Deno.test("no AWS region: one line saying how to set it", SHARES_EMULATORS, async () => {
  oneLine(await cli(KEYS, ...KINESIS), "Cannot reach Kinesis", "no AWS region", "AWS_REGION");
  oneLine(await cli(KEYS, ...S3), "Cannot reach S3", "no AWS region", "AWS_REGION");
});

Deno.test("no AWS credentials: one line saying how to set them", SHARES_EMULATORS, async () => {
  const env = { AWS_REGION: "eu-west-1" };
  oneLine(await cli(env, ...KINESIS), "Cannot reach Kinesis", "credentials", "AWS_ACCESS_KEY_ID");
  oneLine(await cli(env, ...S3), "Cannot reach S3", "credentials", "AWS_ACCESS_KEY_ID");
});

Deno.test("an endpoint where nothing answers is named", SHARES_EMULATORS, async () => {
  const endpoint = `http://127.0.0.1:${closedPort()}`;
  const env = { ...KEYS, AWS_REGION: "eu-west-1" };
  oneLine(
    await cli({ ...env, AWS_ENDPOINT_URL_KINESIS: endpoint }, ...KINESIS),
    "Cannot reach Kinesis",
    "AWS_ENDPOINT_URL_KINESIS",
    `current value is ${endpoint}`,
  );
  oneLine(
    await cli({ ...env, AWS_ENDPOINT_URL_S3: endpoint }, ...S3),
    "Cannot reach S3",
    "AWS_ENDPOINT_URL_S3",
    `current value is ${endpoint}`,
  );
});

Deno.test("a missing region or missing credentials are not retried", () => {
  // Retrying them only delays the one line (by about 10 s of backoff for a Kinesis call).
  assert.equal(isRetryable(new Error("Region is missing")), false);
  const credentials = Object.assign(new Error("Could not load credentials from any providers"), {
    name: "CredentialsProviderError",
  });
  assert.equal(isRetryable(credentials), false);
  // A connection refused may be an endpoint restarting: still retried.
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
    code: "ECONNREFUSED",
  });
  assert.equal(isRetryable(refused), true);
});
