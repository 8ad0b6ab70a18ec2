/**
 * The S3 store's parallel ranged download when a part fails, against an in-memory client (the
 * store itself is proven against fauxqs in tests/store_test.ts): the parts still in flight are
 * stopped, and the download ends only once none of them is left writing the file.
 */
import assert from "node:assert/strict";
import type { S3ClientLike } from "../aws_client.ts";
import { S3SnapshotStore } from "./s3_store.ts";

const PART = 5 * 1024 * 1024;

Deno.test("S3SnapshotStore.download() stops the other parts when one fails, and rethrows that failure", async () => {
  const changed = Object.assign(new Error("At least one of the pre-conditions failed"), {
    name: "PreconditionFailed",
  });
  let thirdAborted = false;
  const client = {
    config: { region: "fake" },
    send(command: { input: { Range?: string } }, options?: { abortSignal?: AbortSignal }) {
      const range = command.input.Range ?? "";
      if (range.startsWith("bytes=0-")) {
        return Promise.resolve({
          ContentRange: `bytes 0-${PART - 1}/${3 * PART}`,
          ETag: '"v1"',
          Body: [new Uint8Array([1, 2, 3])],
        });
      }
      // The second part fails at once (the object was replaced); the third one would take long.
      if (range.startsWith(`bytes=${PART}-`)) return Promise.reject(changed);
      // As the SDK's HTTP handler does: rejected once aborted, also when asked after the abort.
      return new Promise((_, reject) => {
        const abort = () => {
          thirdAborted = true;
          reject(Object.assign(new Error("Request aborted"), { name: "AbortError" }));
        };
        if (options?.abortSignal?.aborted) abort();
        else options?.abortSignal?.addEventListener("abort", abort, { once: true });
      });
    },
  } as unknown as S3ClientLike;
  const store = new S3SnapshotStore({
    client,
    bucket: "bucket",
    partSize: PART,
    concurrency: 2,
  });
  const file = await Deno.makeTempFile();
  try {
    await assert.rejects(store.download("key", file), (error) => error === changed);
    assert.ok(thirdAborted, "the part still in flight was stopped");
  } finally {
    await Deno.remove(file);
  }
});
