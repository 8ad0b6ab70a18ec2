import assert from "node:assert/strict";
import { makeKinesisClient, makeS3Client } from "./_aws.ts";

Deno.test("the CLI's clients have one retry budget per call: streambolt's for Kinesis, the SDK's for S3", async () => {
  const kinesis = makeKinesisClient();
  const s3 = await makeS3Client();
  try {
    // streambolt's loop (10 attempts) wraps every Kinesis call: the client must not retry
    // inside each attempt, or a call could take 10 x 10 attempts.
    assert.equal(await kinesis.config.maxAttempts(), 1);
    // S3 calls have no loop around them: the client's standard retries are their budget.
    assert.equal(await s3.config.maxAttempts(), 10);
  } finally {
    kinesis.destroy();
    s3.destroy();
  }
});
