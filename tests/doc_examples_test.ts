/**
 * Every TypeScript example in README.md and docs/*.md runs, as a reader would run it, against the
 * emulators. `deno task check` type-checks them all (`deno check --doc-only`); this file runs
 * each block fenced as `ts` in its own `deno run`, in document order, one working directory per
 * page. By the fence's info string:
 *
 * - `ts`: type-checked and run here;
 * - `ts no-run`: type-checked only (e.g. a producer that follows until SIGTERM);
 * - `ts ignore`: neither (fragments).
 *
 * The examples are run unchanged. Only the environment differs from a reader's: the AWS SDK's
 * standard variables point the clients at kinesis-local and fauxqs with test credentials, the
 * bucket `my-bucket` and the 1-shard stream `payments` (records `{ account, cents }`) exist, and
 * `@aws-sdk/client-s3` resolves to the SDK with path-style addressing on by default (the
 * emulator has no per-bucket host names), and `@aws-sdk/client-kinesis` to the SDK over HTTP/1.1
 * (the SDK's default for Kinesis is HTTP/2, and Deno's HTTP/2 client failed against kinesis-local
 * with "Protocol error" on a loaded machine; docs/operating.md says so). `@streambolt/streambolt` (and its subpaths) resolves
 * to this checkout.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DeleteObjectsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { createBucket, createStream, DENO } from "./support/emulators.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS } from "./support/fixture.ts";
import { putRecords } from "./support/data.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const BUCKET = "my-bucket";
const STREAM = "payments";

const emulators = sharedKinesisAndS3("streambolt-doc-examples-");
Deno.test.afterAll(() => emulators.stop());

/** One fenced TypeScript block of a page. */
interface Example {
  /** `page:line` of the opening fence. */
  where: string;
  code: string;
  run: boolean;
}

/** The `ts` blocks of a Markdown page, in order; `ts ignore` blocks left out. */
export function tsExamples(page: string, text: string): Example[] {
  const examples: Example[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```ts(?:\s+(.*))?$/.exec(lines[i]);
    if (!open) continue;
    const attributes = (open[1] ?? "").split(/\s+/);
    const end = lines.indexOf("```", i + 1);
    assert.ok(end > i, `${page}:${i + 1}: the block is not closed`);
    if (!attributes.includes("ignore")) {
      examples.push({
        where: `${page}:${i + 1}`,
        code: lines.slice(i + 1, end).join("\n") + "\n",
        run: !attributes.includes("no-run"),
      });
    }
    i = end;
  }
  return examples;
}

/** README.md and every page of docs/, as paths relative to the checkout. */
function pages(): string[] {
  const docs = [...Deno.readDirSync(join(ROOT, "docs"))]
    .filter((e) => e.isFile && e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`)
    .sort();
  return ["README.md", ...docs];
}

/** A config whose imports are the checkout's, with the substitutions the module doc names. */
async function writeConfig(dir: string): Promise<string> {
  const own = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const s3 = own.imports["@aws-sdk/client-s3"] as string;
  const shim = join(dir, "client_s3_path_style.ts");
  await Deno.writeTextFile(
    shim,
    `export * from "${s3}";
import { S3Client as SdkS3Client, type S3ClientConfig } from "${s3}";
export class S3Client extends SdkS3Client {
  constructor(config: S3ClientConfig = {}) {
    super({ forcePathStyle: true, ...config });
  }
}
`,
  );
  const kinesis = own.imports["@aws-sdk/client-kinesis"] as string;
  const http = own.imports["@smithy/node-http-handler"] as string;
  const kinesisShim = join(dir, "client_kinesis_http1.ts");
  await Deno.writeTextFile(
    kinesisShim,
    `export * from "${kinesis}";
import { KinesisClient as SdkKinesisClient, type KinesisClientConfig } from "${kinesis}";
import { NodeHttpHandler } from "${http}";
export class KinesisClient extends SdkKinesisClient {
  constructor(config: KinesisClientConfig = {}) {
    super({ requestHandler: new NodeHttpHandler(), ...config });
  }
}
`,
  );
  const config = join(dir, "deno.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      imports: {
        ...own.imports,
        "@aws-sdk/client-s3": shim,
        "@aws-sdk/client-kinesis": kinesisShim,
        // The package and its subpaths ("./testing" as "@streambolt/streambolt/testing").
        ...Object.fromEntries(
          Object.entries(own.exports as Record<string, string>).map(([path, file]) => [
            `@streambolt/streambolt${path.slice(1)}`,
            join(ROOT, file),
          ]),
        ),
      },
    }),
  );
  return config;
}

Deno.test(
  "every runnable TypeScript example of README.md and docs/ runs against the emulators",
  SHARES_EMULATORS,
  async (t) => {
    const { s3, writer, env, temp } = await emulators.get();
    await createBucket(s3, BUCKET);
    await createStream(writer, STREAM, 1);
    const records = Array.from({ length: 40 }, (_, i) => ({
      partitionKey: `account-${i % 7}`,
      data: new TextEncoder().encode(
        JSON.stringify({ account: `account-${i % 7}`, cents: i * 10 }),
      ),
    }));
    await putRecords(writer, STREAM, records);
    const config = await writeConfig(temp);

    let ran = 0;
    for (const page of pages()) {
      const examples = tsExamples(page, await Deno.readTextFile(join(ROOT, page)));
      if (!examples.some((e) => e.run)) continue;
      // Each page starts from an empty bucket and its own working directory.
      await emptyBucket(s3);
      const cwd = join(temp, page.replaceAll("/", "_"));
      await Deno.mkdir(cwd, { recursive: true });
      for (const [i, example] of examples.entries()) {
        if (!example.run) continue;
        await t.step(example.where, async () => {
          const file = join(cwd, `example-${i}.ts`);
          await Deno.writeTextFile(file, example.code);
          const out = await new Deno.Command(DENO, {
            args: [
              "run",
              "--config",
              config,
              "--no-lock",
              "--allow-net=127.0.0.1,localhost",
              `--allow-read=${temp},${ROOT}`,
              `--allow-write=${cwd}`,
              "--allow-env",
              "--allow-sys=osRelease",
              file,
            ],
            cwd,
            env: { ...env, NO_COLOR: "1" },
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).output();
          const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
          assert.equal(out.code, 0, `${example.where} exited ${out.code}:\n${text}`);
          console.log(new TextDecoder().decode(out.stdout).trim()); // what a reader would see
        });
        ran++;
      }
    }
    assert.ok(ran >= 3, `only ${ran} examples ran`);
  },
);

/** Deletes every object of the bucket. */
async function emptyBucket(s3: import("@aws-sdk/client-s3").S3Client): Promise<void> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
  if (keys.length > 0) {
    await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
  }
  if (listed.IsTruncated) await emptyBucket(s3);
}
