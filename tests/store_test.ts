import assert from "node:assert/strict";
import { join } from "node:path";
import { FileSnapshotStore, InvalidArgumentError, ObjectExistsError } from "../mod.ts";
import { s3Client, startS3 } from "./support/emulators.ts";
import { storeKinds } from "./support/stores.ts";

async function writeFile(dir: string, bytes: Uint8Array): Promise<string> {
  const file = join(dir, crypto.randomUUID());
  await Deno.writeFile(file, bytes);
  return file;
}

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

Deno.test("SnapshotStore implementations behave alike", async (t) => {
  const s3 = await startS3();
  const client = s3Client(s3.endpoint);
  const temp = await Deno.makeTempDir({ prefix: "streambolt-store-" });
  try {
    for (const kind of storeKinds(client, temp)) {
      await t.step(`${kind.name}: put, list, download and delete round-trip`, async () => {
        const store = await kind.make();
        const bytes = randomBytes(1000);
        const src = await writeFile(temp, bytes);
        await store.put("s/shard/1.sqlite", src, { metadata: { sha256: "abc", "raw-size": "9" } });
        const listed = await Array.fromAsync(store.list("s/"));
        assert.deepEqual(listed.map((o) => [o.key, o.size]), [["s/shard/1.sqlite", 1000]]);
        const dest = join(temp, "out");
        const got = await store.download("s/shard/1.sqlite", dest);
        assert.deepEqual(got.metadata, { sha256: "abc", "raw-size": "9" });
        assert.deepEqual(await Deno.readFile(dest), bytes);
        await store.delete(["s/shard/1.sqlite", "s/shard/missing.sqlite"]);
        assert.deepEqual(await Array.fromAsync(store.list("")), []);
      });

      await t.step(
        `${kind.name}: head reads size, metadata and time without the bytes, undefined if absent`,
        async () => {
          const store = await kind.make();
          const src = await writeFile(temp, randomBytes(321));
          const before = Date.now();
          await store.put("s/shard/5.sqlite", src, {
            metadata: {
              sha256: "abc",
              "records-applied": "7",
              "last-arrival-at": "2024-01-02T03:04:05.000Z",
            },
          });
          const head = await store.head!("s/shard/5.sqlite");
          assert.ok(head);
          assert.equal(head.size, 321);
          assert.deepEqual(head.metadata, {
            sha256: "abc",
            "records-applied": "7",
            "last-arrival-at": "2024-01-02T03:04:05.000Z",
          });
          // Second-resolution clocks (S3's Last-Modified) round down.
          assert.ok(head.lastModified && head.lastModified.getTime() >= before - 2_000);
          const [listed] = await Array.fromAsync(store.list("s/shard/"));
          // The same time as the listing's, to the second (an HTTP date has no milliseconds).
          const listedMs = listed.lastModified?.getTime() ?? 0;
          assert.ok(Math.abs(listedMs - head.lastModified.getTime()) < 1_000);
          assert.equal(await store.head!("s/shard/6.sqlite"), undefined);
          assert.equal(await store.head!("s/other/5.sqlite"), undefined);
          await store.delete(["s/shard/5.sqlite"]);
          assert.equal(await store.head!("s/shard/5.sqlite"), undefined);
        },
      );

      await t.step(
        `${kind.name}: list returns every key past 1,000 and honours the prefix`,
        async () => {
          const store = await kind.make();
          const src = await writeFile(temp, new Uint8Array([1]));
          const keys = Array.from({ length: 1_050 }, (_, i) => `s/a/${i}.sqlite`);
          for (let i = 0; i < keys.length; i += 50) {
            await Promise.all(
              keys.slice(i, i + 50).map((key) =>
                store.put(key, src, { metadata: { sha256: "x" } })
              ),
            );
          }
          await store.put("s/b/1.sqlite", src, { metadata: {} });
          await store.put("sx/a/1.sqlite", src, { metadata: {} });
          const listed = (await Array.fromAsync(store.list("s/a/"))).map((o) => o.key);
          assert.equal(listed.length, 1_050);
          assert.deepEqual(new Set(listed), new Set(keys));
          assert.equal((await Array.fromAsync(store.list("s/"))).length, 1_051);
          await store.delete(keys);
          assert.equal((await Array.fromAsync(store.list("s/a/"))).length, 0);
        },
      );

      await t.step(`${kind.name}: a large file moves in parts and arrives whole`, async () => {
        const store = await kind.make({ partSize: 5 * 1024 * 1024, concurrency: 3 });
        const bytes = randomBytes(12 * 1024 * 1024 + 123);
        const src = await writeFile(temp, bytes);
        let progress = 0;
        await store.put("s/big/1.sqlite", src, {
          metadata: { sha256: "big" },
          onProgress: (n) => (progress = n),
        });
        assert.ok(progress > 0);
        const dest = join(temp, "big-out");
        const got = await store.download("s/big/1.sqlite", dest);
        assert.equal(got.size, bytes.length);
        assert.deepEqual(await Deno.readFile(dest), bytes);
      });
    }

    await t.step("file: put refuses to replace an existing key, and keeps the first", async () => {
      const store = new FileSnapshotStore({ root: await Deno.makeTempDir({ dir: temp }) });
      const first = await writeFile(temp, new Uint8Array([1]));
      const second = await writeFile(temp, new Uint8Array([2, 2]));
      await store.put("s/a/1.sqlite", first, { metadata: { sha256: "first" } });
      await assert.rejects(
        store.put("s/a/1.sqlite", second, { metadata: { sha256: "second" } }),
        ObjectExistsError,
      );
      const got = await store.download("s/a/1.sqlite", join(temp, "x"));
      assert.deepEqual(got.metadata, { sha256: "first" });
      assert.deepEqual(await Deno.readFile(join(temp, "x")), new Uint8Array([1]));
    });

    await t.step(
      "file: racing writers of one key leave exactly one consistent object",
      async () => {
        const store = new FileSnapshotStore({ root: await Deno.makeTempDir({ dir: temp }) });
        const files = await Promise.all(
          Array.from({ length: 8 }, (_, i) => writeFile(temp, new Uint8Array([i]))),
        );
        const results = await Promise.allSettled(
          files.map((f, i) => store.put("s/a/7.sqlite", f, { metadata: { sha256: String(i) } })),
        );
        const winners = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
        assert.equal(winners.length, 1);
        for (const r of results) {
          if (r.status === "rejected") assert.ok(r.reason instanceof ObjectExistsError);
        }
        const got = await store.download("s/a/7.sqlite", join(temp, "y"));
        assert.equal(got.metadata.sha256, String(winners[0]));
        assert.deepEqual(await Deno.readFile(join(temp, "y")), new Uint8Array([winners[0]]));
      },
    );

    await t.step("file: head does not see data whose sidecar is not linked yet", async () => {
      const root = await Deno.makeTempDir({ dir: temp });
      const store = new FileSnapshotStore({ root });
      await Deno.mkdir(join(root, "s", "a"), { recursive: true });
      await Deno.writeFile(join(root, "s", "a", "3.sqlite"), new Uint8Array([1, 2, 3]));
      assert.equal(await store.head("s/a/3.sqlite"), undefined);
      await Deno.writeTextFile(join(root, "s", "a", "3.sqlite.meta.json"), "not json");
      assert.deepEqual(await store.head("s/a/3.sqlite").then((h) => [h?.size, h?.metadata]), [
        3,
        {},
      ]);
    });

    await t.step("file: hostile keys are refused, never resolved outside the root", async () => {
      const root = await Deno.makeTempDir({ dir: temp });
      const store = new FileSnapshotStore({ root });
      const src = await writeFile(temp, new Uint8Array([1]));
      for (
        const key of ["../escape.sqlite", "a/../../escape", "/etc/passwd", "a//b", ".hidden/x"]
      ) {
        await assert.rejects(store.put(key, src, { metadata: {} }), InvalidArgumentError, key);
        await assert.rejects(store.download(key, join(temp, "z")), InvalidArgumentError, key);
        await assert.rejects(store.head(key), InvalidArgumentError, key);
      }
      assert.deepEqual(await Array.fromAsync(Deno.readDir(root)), []);
    });
  } finally {
    client.destroy();
    await s3.stop();
    await Deno.remove(temp, { recursive: true });
  }
});
