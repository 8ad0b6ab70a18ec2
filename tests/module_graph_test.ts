import assert from "node:assert/strict";
import { DENO } from "./support/emulators.ts";

const ROOT = new URL("../", import.meta.url);

interface Dependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface ModuleInfo {
  specifier: string;
  dependencies?: Dependency[];
  npmPackage?: string;
}
interface GraphInfo {
  roots: string[];
  modules: ModuleInfo[];
  redirects: Record<string, string>;
  npmPackages: Record<string, { name: string; dependencies: string[] }>;
}

/**
 * What importing `path` loads before any dynamic `import()` runs: the local modules and the
 * names of the npm packages (with their own dependencies), from `deno info --json`.
 * Type-only imports load nothing and are skipped.
 */
async function staticallyLoaded(path: string): Promise<Set<string>> {
  const output = await new Deno.Command(DENO, {
    args: ["info", "--json", new URL(path, ROOT).href],
    cwd: new URL(".", ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const info: GraphInfo = JSON.parse(new TextDecoder().decode(output.stdout));
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const loaded = new Set<string>();
  const packages: string[] = [];
  const pending = [...info.roots];
  for (let specifier = pending.pop(); specifier !== undefined; specifier = pending.pop()) {
    specifier = info.redirects[specifier] ?? specifier;
    if (loaded.has(specifier)) continue;
    loaded.add(specifier);
    const module = modules.get(specifier);
    if (module?.npmPackage) packages.push(module.npmPackage);
    for (const dependency of module?.dependencies ?? []) {
      if (dependency.code && !dependency.isDynamic) pending.push(dependency.code.specifier);
    }
  }
  for (let id = packages.pop(); id !== undefined; id = packages.pop()) {
    const npm = info.npmPackages[id];
    if (!npm || loaded.has(npm.name)) continue;
    loaded.add(npm.name);
    packages.push(...npm.dependencies);
  }
  return loaded;
}

function assertNoS3(loaded: Set<string>, what: string): void {
  for (const name of ["@aws-sdk/client-s3", "@aws-sdk/lib-storage"]) {
    assert.ok(!loaded.has(name), `${what} loads ${name} statically`);
  }
  const s3Store = new URL("src/store/s3_store.ts", ROOT).href;
  assert.ok(!loaded.has(s3Store), `${what} loads src/store/s3_store.ts statically`);
}

Deno.test("openStore() loads the S3 store and SDK only for s3:// URLs", async () => {
  const loaded = await staticallyLoaded("src/store/store_url.ts");
  assert.ok(loaded.has(new URL("src/store/file_store.ts", ROOT).href), "sanity: file store");
  assertNoS3(loaded, "src/store/store_url.ts");
});

Deno.test("no CLI command loads the S3 SDK before it opens an s3:// store", async (t) => {
  for (
    const command of [
      "snapshot",
      "list",
      "latest",
      "download",
      "inspect",
      "status",
      "gc",
      "replicate",
    ]
  ) {
    await t.step(command, async () => {
      assertNoS3(await staticallyLoaded(`src/cli/${command}.ts`), `src/cli/${command}.ts`);
    });
  }
});

Deno.test("importing mod.ts loads no AWS SDK until a call needs it", async () => {
  const loaded = await staticallyLoaded("mod.ts");
  assert.ok(loaded.has(new URL("src/store/file_store.ts", ROOT).href), "sanity: file store");
  for (const name of ["@aws-sdk/client-s3", "@aws-sdk/lib-storage", "@aws-sdk/client-kinesis"]) {
    assert.ok(!loaded.has(name), `mod.ts loads ${name} statically`);
  }
});

Deno.test("importing the testing and format subpaths loads no AWS SDK", async (t) => {
  for (const entry of ["testing.ts", "format.ts"]) {
    await t.step(entry, async () => {
      const loaded = await staticallyLoaded(entry);
      for (
        const name of ["@aws-sdk/client-s3", "@aws-sdk/lib-storage", "@aws-sdk/client-kinesis"]
      ) {
        assert.ok(!loaded.has(name), `${entry} loads ${name} statically`);
      }
    });
  }
});

Deno.test("a snapshot run loads no protobuf library, and the Kinesis SDK only once it runs", async (t) => {
  for (const path of ["cli.ts", "src/cli/snapshot.ts", "src/kinesis/shard_reader.ts"]) {
    await t.step(path, async () => {
      const loaded = await staticallyLoaded(path);
      assert.ok(loaded.has(new URL("src/kinesis/kpl.ts", ROOT).href) || path === "cli.ts");
      for (const name of ["protobufjs", "@aws-sdk/client-kinesis", "@smithy/node-http-handler"]) {
        assert.ok(!loaded.has(name), `${path} loads ${name} statically`);
      }
    });
  }
});
