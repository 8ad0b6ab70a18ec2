import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(path, ROOT))) as T;
}

/** The source of every module `deno publish` ships (deno.json's exports, src/ without tests). */
async function publishedSources(): Promise<string[]> {
  const { exports } = await readJson<{ exports: Record<string, string> }>("deno.json");
  const sources = await Promise.all(
    Object.values(exports).map((path) => Deno.readTextFile(new URL(path, ROOT))),
  );
  const walk = async (dir: URL): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await walk(new URL(`${entry.name}/`, dir));
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
        sources.push(await Deno.readTextFile(new URL(entry.name, dir)));
      }
    }
  };
  await walk(new URL("src/", ROOT));
  return sources;
}

/** Entries of the import map only the tests use (the simulator's fast-check): never published. */
const TEST_ONLY = new Set(["fast-check"]);

Deno.test("deno.json's import map holds only what the published modules import, and the tests' own tools", async () => {
  const { imports } = await readJson<{ imports: Record<string, string> }>("deno.json");
  const sources = await publishedSources();
  for (const name of Object.keys(imports)) {
    const used = sources.some((s) => s.includes(`"${name}"`) || s.includes(`"${name}/`));
    if (TEST_ONLY.has(name)) {
      assert.ok(!used, `${name} is a test tool, but a published module imports it`);
    } else {
      assert.ok(used, `${name} is in the import map but no published module imports it`);
    }
  }
});

Deno.test("the Kinesis and S3 clients share one version of every @aws-sdk and @smithy package", async () => {
  const lock = await readJson<{ npm: Record<string, unknown> }>("deno.lock");
  const versions = new Map<string, string[]>();
  for (const id of Object.keys(lock.npm)) {
    // "@scope/name@1.2.3" or, with peer dependencies, "@scope/name@1.2.3_@peer+name@4.5.6".
    const at = id.indexOf("@", 1);
    const name = id.slice(0, at);
    if (!name.startsWith("@aws-sdk/") && !name.startsWith("@smithy/")) continue;
    versions.set(name, [...(versions.get(name) ?? []), id.slice(at + 1).split("_")[0]]);
  }
  assert.ok(versions.has("@aws-sdk/client-kinesis") && versions.has("@aws-sdk/client-s3"));
  const duplicated = [...versions].filter(([, v]) => new Set(v).size > 1);
  assert.deepEqual(duplicated, [], "one version of each shared SDK package");
});
