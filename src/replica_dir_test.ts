import assert from "node:assert/strict";
import { join } from "node:path";
import { ReplicaDir, ReplicaDirError } from "./replica_dir.ts";

const identity = { stream: "orders", store: "s3://bucket/snaps" };

Deno.test("a replica directory is held by one opener at a time, named by its pid", async () => {
  const out = await Deno.makeTempDir({ prefix: "streambolt-replica-dir-" });
  try {
    const first = await ReplicaDir.open(out, identity);
    const refused = await ReplicaDir.open(out, identity).then(() => undefined, (e) => e);
    assert.ok(refused instanceof ReplicaDirError, String(refused));
    assert.match(refused.message, new RegExp(`another process \\(pid ${Deno.pid}\\)`));
    assert.match(refused.message, /current value is ".*orders"$/);
    first.close();
    // Let go: the next opener holds it.
    const second = await ReplicaDir.open(out, identity);
    assert.equal(
      (await Deno.readTextFile(join(out, "orders", ".lock"))).trim(),
      String(Deno.pid),
    );
    second.close();
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a refused replica directory is let go of: another stream's can be opened again", async () => {
  const out = await Deno.makeTempDir({ prefix: "streambolt-replica-dir-" });
  try {
    (await ReplicaDir.open(out, identity)).close();
    const other = { ...identity, store: "s3://elsewhere/snaps" };
    await assert.rejects(() => ReplicaDir.open(out, other), ReplicaDirError);
    // The refusal did not keep the lock.
    (await ReplicaDir.open(out, identity)).close();
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
