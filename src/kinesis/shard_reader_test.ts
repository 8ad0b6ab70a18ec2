/**
 * The shard reader's prefetch, against an in-memory Kinesis (the reading itself is proven against
 * kinesis-local in tests/): a GetRecords fetched ahead of the caller must never be a promise
 * without a handler, whatever it ends with and whenever the caller stops.
 */
import assert from "node:assert/strict";
import { FakeKinesis, untilAborted } from "../../tests/support/fake_kinesis.ts";
import { ShardReadError } from "../errors.ts";
import type { LogFields, Logger } from "../logger.ts";
import { BOOTSTRAP_SEQUENCE } from "../snapshot_key.ts";
import { readShard } from "./shard_reader.ts";

const SHARD = "shardId-000000000000";

/** Collects the rejections no handler took, instead of letting them end the test run. */
function unhandledRejections(): { reasons: unknown[] } & Disposable {
  const reasons: unknown[] = [];
  const listener = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    reasons.push(event.reason);
  };
  globalThis.addEventListener("unhandledrejection", listener);
  return {
    reasons,
    [Symbol.dispose]: () => globalThis.removeEventListener("unhandledrejection", listener),
  };
}

/** A few turns of the event loop: where Deno reports rejections that have no handler. */
async function turns(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** A shard with one record whose second GetRecords (the prefetch) is answered by `second`. */
function shardWithPrefetch(second: (signal: AbortSignal | undefined) => Promise<unknown>) {
  const fake = new FakeKinesis();
  fake.put([{ partitionKey: "a", data: "1" }]);
  const { promise: sent, resolve } = Promise.withResolvers<void>();
  fake.onGetRecords = (call, signal) => {
    if (call !== 2) return undefined;
    resolve();
    return second(signal);
  };
  return { fake, prefetchSent: sent };
}

Deno.test("readShard() leaves no prefetched GetRecords unhandled when stopped while the caller holds a page", async () => {
  using unhandled = unhandledRejections();
  const { fake, prefetchSent } = shardWithPrefetch(untilAborted);
  const stop = new AbortController();
  const pages = readShard(fake.client, {
    stream: "s",
    shardId: SHARD,
    after: BOOTSTRAP_SEQUENCE,
    signal: stop.signal,
  });
  const first = await pages.next();
  assert.equal(first.value?.records.length, 1);
  await prefetchSent;
  // The caller is still busy with the page (publishing it, say) when the stop comes: the HTTP
  // handler rejects the prefetch with AbortError while nobody awaits it.
  stop.abort();
  await turns();
  await pages.return(undefined);
  assert.deepEqual(unhandled.reasons, []);
});

Deno.test("readShard() delivers a prefetch that failed while the caller held a page at the next page, never unhandled", async () => {
  using unhandled = unhandledRejections();
  const gone = Object.assign(new Error("Stream s not found"), {
    name: "ResourceNotFoundException",
    $metadata: { httpStatusCode: 400 },
  });
  const { fake, prefetchSent } = shardWithPrefetch(() => Promise.reject(gone));
  const pages = readShard(fake.client, { stream: "s", shardId: SHARD, after: BOOTSTRAP_SEQUENCE });
  await pages.next();
  await prefetchSent;
  await turns();
  await assert.rejects(pages.next(), (error: Error) => {
    assert.ok(error instanceof ShardReadError, String(error));
    assert.equal(error.cause, gone);
    return true;
  });
  assert.deepEqual(unhandled.reasons, []);
});

Deno.test("readShard() stopped by its signal ends the next page with the stop's reason", async () => {
  using unhandled = unhandledRejections();
  const { fake, prefetchSent } = shardWithPrefetch(untilAborted);
  const stop = new AbortController();
  const reason = new DOMException("stopping", "AbortError");
  const pages = readShard(fake.client, {
    stream: "s",
    shardId: SHARD,
    after: BOOTSTRAP_SEQUENCE,
    signal: stop.signal,
  });
  await pages.next();
  await prefetchSent;
  stop.abort(reason);
  await turns();
  await assert.rejects(pages.next(), (error) => error === reason);
  assert.deepEqual(unhandled.reasons, []);
});

Deno.test("readShard() let go of early swallows only the abort it caused: a prefetch that failed otherwise is logged", async (t) => {
  const warnings: Array<[string, LogFields | undefined]> = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (msg, fields) => void warnings.push([msg, fields]),
  };
  await t.step("aborted by the close: nothing logged", async () => {
    using unhandled = unhandledRejections();
    const { fake, prefetchSent } = shardWithPrefetch(untilAborted);
    const pages = readShard(fake.client, {
      stream: "s",
      shardId: SHARD,
      after: BOOTSTRAP_SEQUENCE,
      logger,
    });
    await pages.next();
    await prefetchSent;
    await pages.return(undefined);
    assert.deepEqual(warnings, []);
    assert.deepEqual(unhandled.reasons, []);
  });
  await t.step("failed before the close: logged, not thrown", async () => {
    using unhandled = unhandledRejections();
    const broken = Object.assign(new Error("boom"), { name: "InternalFailure" });
    const { fake, prefetchSent } = shardWithPrefetch(() => Promise.reject(broken));
    const pages = readShard(fake.client, {
      stream: "s",
      shardId: SHARD,
      after: BOOTSTRAP_SEQUENCE,
      logger,
      retry: { maxAttempts: 1 },
    });
    await pages.next();
    await prefetchSent;
    await turns();
    await pages.return(undefined);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0][0], /prefetched page/);
    assert.equal(warnings[0][1]?.error, "InternalFailure: boom");
    assert.deepEqual(unhandled.reasons, []);
  });
});
