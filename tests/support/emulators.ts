/**
 * Starts the local emulators the integration tests and the demo run against: kinesis-local
 * (kinesis-mock) and fauxqs (S3), each under Deno on free loopback ports, each with only the
 * permissions it needs. `stop()` kills the process and waits for it.
 *
 * @module
 */
import { CreateStreamCommand, KinesisClient, waitUntilStreamExists } from "@aws-sdk/client-kinesis";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";

/** The Deno binary by name: what the tests' `--allow-run=deno` permission grants. */
export const DENO = "deno";

export const KINESIS_LOCAL = "npm:kinesis-local@0.6.2";
export const FAUXQS = "npm:fauxqs@2.4.1";

/** Credentials the emulators accept; never real ones. */
export const TEST_CREDENTIALS = {
  accessKeyId: "test",
  secretAccessKey: "test",
};
export const TEST_REGION = "us-east-1";

/** A running emulator process. */
export interface Emulator {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** The port the tests talk to. */
  port: number;
  /** Kills the process and waits until it has exited. */
  stop(): Promise<void>;
  /** The last lines the process wrote to stderr, for failure messages. */
  output(): string;
}

/** A free TCP port on loopback, as reported by the OS. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

let npmCacheDir: Promise<string> | undefined;

/** Deno's npm cache folder, after making sure both emulator packages are in it. */
function npmCache(): Promise<string> {
  npmCacheDir ??= (async () => {
    const cache = await new Deno.Command(DENO, {
      args: ["cache", "--quiet", KINESIS_LOCAL, FAUXQS],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!cache.success) {
      throw new Error(
        `Cannot cache the emulators: ${new TextDecoder().decode(cache.stderr)}`,
      );
    }
    const info = await new Deno.Command(DENO, {
      args: ["info", "--json"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return JSON.parse(new TextDecoder().decode(info.stdout)).npmCache as string;
  })();
  return npmCacheDir;
}

function spawn(args: string[], env: Record<string, string>): {
  child: Deno.ChildProcess;
  output: () => string;
  drained: Promise<void>;
} {
  const child = new Deno.Command(DENO, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const keep = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      tail = (tail + chunk).slice(-4000);
    }
  };
  const drained = Promise.all([keep(child.stdout), keep(child.stderr)]).then(
    () => {},
  );
  return { child, output: () => tail, drained };
}

async function waitFor(
  what: string,
  ready: () => Promise<boolean>,
  child: Deno.ChildProcess,
  output: () => string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.status.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${what} exited during start-up:\n${output()}`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not start within ${timeoutMs} ms:\n${output()}`);
}

function makeStop(
  child: Deno.ChildProcess,
  drained: Promise<void>,
): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await drained;
    })();
}

async function httpOk(url: string, init?: RequestInit): Promise<boolean> {
  const response = await fetch(url, init);
  await response.body?.cancel();
  return response.status < 500;
}

/**
 * Runs `start` again (with new ports) when the emulator lost its port: `freePort()` releases
 * the port before the emulator binds it, so another process (a test run next door) can take it
 * in between.
 */
async function retryIfPortTaken(start: () => Promise<Emulator>): Promise<Emulator> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start();
    } catch (error) {
      const taken = /EADDRINUSE|Address already in use/.test(String(error));
      if (!taken || attempt >= 3) throw error;
    }
  }
}

/** Starts kinesis-local on free ports. */
export function startKinesis(): Promise<Emulator> {
  return retryIfPortTaken(startKinesisOnce);
}

async function startKinesisOnce(): Promise<Emulator> {
  const cache = await npmCache();
  const pkg = `${cache}/registry.npmjs.org/kinesis-local/0.6.2`;
  const port = freePort();
  const tlsPort = freePort();
  const { child, output, drained } = spawn([
    "run",
    `--allow-net=[::]:${port},[::]:${tlsPort}`,
    `--allow-read=${pkg}`,
    "--allow-env",
    KINESIS_LOCAL,
  ], {
    KINESIS_MOCK_CERT_PATH: `${pkg}/server.json`,
    KINESIS_MOCK_PLAIN_PORT: String(port),
    KINESIS_MOCK_TLS_PORT: String(tlsPort),
    LOG_LEVEL: "ERROR",
    CREATE_STREAM_DURATION: "0ms",
    DELETE_STREAM_DURATION: "0ms",
    UPDATE_SHARD_COUNT_DURATION: "0ms",
    SPLIT_SHARD_DURATION: "0ms",
    MERGE_SHARDS_DURATION: "0ms",
    AWS_REGION: TEST_REGION,
  });
  const stop = makeStop(child, drained);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      "kinesis-local",
      () =>
        httpOk(endpoint, {
          method: "POST",
          headers: { "content-type": "application/x-amz-json-1.1" },
          body: "{}",
        }),
      child,
      output,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, port, stop, output };
}

/** Starts fauxqs (S3) on a free port. */
export function startS3(): Promise<Emulator> {
  return retryIfPortTaken(startS3Once);
}

async function startS3Once(): Promise<Emulator> {
  const cache = await npmCache();
  const port = freePort();
  const { child, output, drained } = spawn([
    "run",
    `--allow-net=0.0.0.0:${port},127.0.0.1:${port}`,
    `--allow-read=${cache}`,
    "--allow-env",
    "--allow-sys",
    FAUXQS,
  ], {
    FAUXQS_PORT: String(port),
    FAUXQS_HOST: "127.0.0.1",
    FAUXQS_LOGGER: "false",
  });
  const stop = makeStop(child, drained);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitFor("fauxqs", () => httpOk(`${endpoint}/health`), child, output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, port, stop, output };
}

/** A handler with timeouts, so that a stalled emulator call is retried rather than hanging. */
export function testRequestHandler(): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: 2_000,
    requestTimeout: 10_000,
    throwOnRequestTimeout: true,
  });
}

/** A Kinesis client for an emulator. */
export function kinesisClient(endpoint: string): KinesisClient {
  return new KinesisClient({
    endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    requestHandler: testRequestHandler(),
    maxAttempts: 5,
  });
}

/**
 * A Kinesis client for writing test data: kinesis-local slows down as a shard fills up, so
 * PutRecords gets a long timeout (a timed-out PutRecords that is retried would write twice).
 */
export function kinesisWriter(endpoint: string): KinesisClient {
  return new KinesisClient({
    endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 2_000,
      requestTimeout: 120_000,
      throwOnRequestTimeout: true,
    }),
    maxAttempts: 3,
  });
}

/** An S3 client for an emulator (path-style). */
export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    forcePathStyle: true,
    requestHandler: testRequestHandler(),
    maxAttempts: 5,
  });
}

/** Creates a stream and waits until it is active. */
export async function createStream(
  kinesis: KinesisClient,
  name: string,
  shards: number,
): Promise<void> {
  await kinesis.send(
    new CreateStreamCommand({ StreamName: name, ShardCount: shards }),
  );
  await waitUntilStreamExists(
    { client: kinesis, maxWaitTime: 60, minDelay: 1 },
    {
      StreamName: name,
    },
  );
}

/** Creates a bucket. */
export async function createBucket(
  s3: S3Client,
  bucket: string,
): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** The environment that points the CLI (and the SDK) at the emulators, with test credentials. */
export function emulatorEnv(
  kinesis?: Emulator,
  s3?: Emulator,
): Record<string, string> {
  return {
    ...(kinesis ? { AWS_ENDPOINT_URL_KINESIS: kinesis.endpoint } : {}),
    ...(s3 ? { AWS_ENDPOINT_URL_S3: s3.endpoint } : {}),
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_REGION: TEST_REGION,
  };
}
