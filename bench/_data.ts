/**
 * Benchmark data: ~100-byte JSON events over a fixed set of keys, as pages of records, made
 * on the fly so that the memory figure measures streambolt, not the data.
 *
 * @module
 */
import type { ShardPage, ShardRecord } from "../mod.ts";

const encoder = new TextEncoder();
const SEQ_BASE = 49_600_000_000_000_000_000_000_000_000_000_000_000_000n;

/** Record `i` of the benchmark's stream of events. */
export function event(i: number, keys: number): ShardRecord {
  // A multiplicative hash spreads the keys so that upserts land all over the table.
  const k = Number((BigInt(i) * 2_654_435_761n) % BigInt(keys));
  const key = `key-${k.toString().padStart(6, "0")}`;
  const data = encoder.encode(
    JSON.stringify({
      id: i,
      key,
      amount: (i * 7919) % 100_000,
      kind: "payment",
      ts: 1_790_000_000_000 + i,
    }),
  );
  return {
    sequenceNumber: (SEQ_BASE + BigInt(i) * 1_000n).toString(),
    partitionKey: key,
    data,
    approximateArrivalTimestamp: new Date(1_790_000_000_000 + i),
  };
}

/** `count` records as pages of `pageSize`, generated as they are asked for. */
export async function* eventPages(
  count: number,
  keys: number,
  pageSize = 10_000,
): AsyncGenerator<ShardPage> {
  for (let start = 0; start < count; start += pageSize) {
    const n = Math.min(pageSize, count - start);
    const records = Array.from({ length: n }, (_, j) => event(start + j, keys));
    const last = start + n >= count;
    yield {
      shardId: "shardId-000000000000",
      records,
      millisBehindLatest: last ? 0 : 1_000,
      fullPage: !last,
      closed: false,
      childShards: [],
    };
  }
}

/** All pages made up front (for timing apply paths without generation cost). */
export async function materialize(count: number, keys: number): Promise<ShardPage[]> {
  return await Array.fromAsync(eventPages(count, keys));
}

/** Wall-clock ms of a function, awaiting what it returns. */
export async function time(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
