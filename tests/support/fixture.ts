/**
 * The emulators of one test file, shared by its cases: started by the first case that asks for
 * them (so `--filter` on any one case starts them, and a filter that selects none starts
 * nothing), stopped by the file's `Deno.test.afterAll` hook:
 *
 * ```ts
 * import { SHARES_EMULATORS, sharedKinesisAndS3 } from "./fixture.ts";
 *
 * const emulators = sharedKinesisAndS3("streambolt-x-");
 * Deno.test.afterAll(() => emulators.stop());
 *
 * Deno.test("something happens", SHARES_EMULATORS, async () => {
 *   const { kinesis, s3, temp } = await emulators.get();
 * });
 * ```
 *
 * @module
 */
import type { KinesisClient } from "@aws-sdk/client-kinesis";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  type Emulator,
  emulatorEnv,
  kinesisClient,
  kinesisWriter,
  s3Client,
  startKinesis,
  startS3,
} from "./emulators.ts";

/**
 * Test options for a case that uses a shared fixture: Deno's op and resource sanitizers off for
 * that case only.
 *
 * Why: the sanitizers check each case on its own, and a shared fixture cannot pass them. The
 * case that happens to start the emulators leaves their processes, pipes and pending reads
 * open (they are closed by `afterAll`), and the emulators' output is read whenever they write,
 * during whichever case runs then ("started before the test, but completed during the test").
 * The clients' keep-alive sockets also outlive a case. Every process is still awaited, in
 * `stop()`. (Deno 2.9 runs tests with these two sanitizers off unless `--sanitize-ops`,
 * `--sanitize-resources` or deno.json turns them on; these options keep the shared cases
 * passing when they are on, and leave the exit sanitizer on.)
 */
export const SHARES_EMULATORS: Omit<Deno.TestDefinition, "fn" | "name"> = {
  sanitizeOps: false,
  sanitizeResources: false,
};

/** A value built once, when first asked for, and torn down by `stop()` if it was built. */
export class Fixture<T> {
  #start: () => Promise<T>;
  #stop: (value: T) => Promise<void>;
  #value: Promise<T> | undefined;

  constructor(start: () => Promise<T>, stop: (value: T) => Promise<void>) {
    this.#start = start;
    this.#stop = stop;
  }

  /** The value, built by the first call; a failed start fails every later call the same way. */
  get(): Promise<T> {
    return this.#value ??= this.#start();
  }

  /** Whether a case has asked for the value since the last `stop()`. */
  get started(): boolean {
    return this.#value !== undefined;
  }

  /** Tears the value down if it was built (a failed start has cleaned up after itself). */
  async stop(): Promise<void> {
    const value = this.#value;
    this.#value = undefined;
    if (!value) return;
    let built: T;
    try {
      built = await value;
    } catch {
      return;
    }
    await this.#stop(built);
  }
}

/** kinesis-local, its clients, and a temp dir for the file's cases. */
export interface KinesisEmulator {
  kinesisEmulator: Emulator;
  /** For reads: short timeouts, so a stalled GetRecords is retried. */
  kinesis: KinesisClient;
  /** For test data: long PutRecords timeouts (see `kinesisWriter`). */
  writer: KinesisClient;
  /** Removed by `stop()`. */
  temp: string;
  /** Points the CLI at the emulators, with test credentials. */
  env: Record<string, string>;
}

/** kinesis-local and fauxqs (S3), their clients, and a temp dir for the file's cases. */
export interface KinesisAndS3Emulators extends KinesisEmulator {
  s3Emulator: Emulator;
  s3: S3Client;
}

/**
 * Waits for all of `starts`; if one fails, stops the ones that started, removes `temp` and
 * throws the first failure.
 */
async function startAll(starts: Array<Promise<Emulator>>, temp: string): Promise<Emulator[]> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<Emulator>).value);
  await Promise.all(
    settled.flatMap((s) => s.status === "fulfilled" ? [s.value.stop()] : []),
  );
  await Deno.remove(temp, { recursive: true });
  throw failed.reason;
}

/** kinesis-local for one test file, started on first use. */
export function sharedKinesis(tempPrefix: string): Fixture<KinesisEmulator> {
  return new Fixture(async () => {
    const temp = await Deno.makeTempDir({ prefix: tempPrefix });
    const [kinesisEmulator] = await startAll([startKinesis()], temp);
    return {
      kinesisEmulator,
      kinesis: kinesisClient(kinesisEmulator.endpoint),
      writer: kinesisWriter(kinesisEmulator.endpoint),
      temp,
      env: emulatorEnv(kinesisEmulator),
    };
  }, async (e) => {
    e.kinesis.destroy();
    e.writer.destroy();
    await e.kinesisEmulator.stop();
    await Deno.remove(e.temp, { recursive: true });
  });
}

/** kinesis-local and fauxqs for one test file, started on first use. */
export function sharedKinesisAndS3(tempPrefix: string): Fixture<KinesisAndS3Emulators> {
  return new Fixture(async () => {
    const temp = await Deno.makeTempDir({ prefix: tempPrefix });
    const [kinesisEmulator, s3Emulator] = await startAll([startKinesis(), startS3()], temp);
    return {
      kinesisEmulator,
      s3Emulator,
      kinesis: kinesisClient(kinesisEmulator.endpoint),
      writer: kinesisWriter(kinesisEmulator.endpoint),
      s3: s3Client(s3Emulator.endpoint),
      temp,
      env: emulatorEnv(kinesisEmulator, s3Emulator),
    };
  }, async (e) => {
    e.kinesis.destroy();
    e.writer.destroy();
    e.s3.destroy();
    await Promise.all([e.kinesisEmulator.stop(), e.s3Emulator.stop()]);
    await Deno.remove(e.temp, { recursive: true });
  });
}

let nameCounter = 0;

/** A stream or bucket name no other case of this file uses: `prefix-N`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${++nameCounter}`;
}
