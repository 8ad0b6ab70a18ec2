/**
 * Test data: a seeded random source and a helper that writes records to a stream with
 * parallel PutRecords calls, retrying the entries Kinesis rejects.
 *
 * @module
 */
import { type KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One record to put. */
export interface TestRecord {
  partitionKey: string;
  data: Uint8Array;
  explicitHashKey?: string;
}

/** What was written: each entry's shard and sequence number, in input order. */
export interface PutResult {
  shardId: string;
  sequenceNumber: string;
}

/** `count` records with `keys` distinct partition keys and JSON payloads. */
export function makeRecords(
  count: number,
  options: { keys?: number; seed?: number; prefix?: string } = {},
): TestRecord[] {
  const random = seededRandom(options.seed ?? 1);
  const keys = options.keys ?? count;
  const encoder = new TextEncoder();
  const out: TestRecord[] = [];
  for (let i = 0; i < count; i++) {
    const key = `${options.prefix ?? "k"}${Math.floor(random() * keys)}`;
    out.push({
      partitionKey: key,
      data: encoder.encode(JSON.stringify({ i, key, v: Math.floor(random() * 1e9) })),
    });
  }
  return out;
}

/** Writes records (500 per call, `concurrency` calls at once), retrying rejected entries. */
export async function putRecords(
  kinesis: KinesisClient,
  stream: string,
  records: TestRecord[],
  concurrency = 4,
): Promise<PutResult[]> {
  const results: PutResult[] = new Array(records.length);
  const chunks: number[][] = [];
  for (let i = 0; i < records.length; i += 500) {
    chunks.push(Array.from({ length: Math.min(500, records.length - i) }, (_, j) => i + j));
  }
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      let pending = chunks[next++];
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 20) throw new Error("PutRecords kept failing");
        const out = await kinesis.send(
          new PutRecordsCommand({
            StreamName: stream,
            Records: pending.map((i) => ({
              PartitionKey: records[i].partitionKey,
              Data: records[i].data,
              ExplicitHashKey: records[i].explicitHashKey,
            })),
          }),
        );
        const failed: number[] = [];
        out.Records!.forEach((r, j) => {
          if (r.ErrorCode) failed.push(pending[j]);
          else results[pending[j]] = { shardId: r.ShardId!, sequenceNumber: r.SequenceNumber! };
        });
        pending = failed;
        if (failed.length) await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

/** Counts put records per shard. */
export function countByShard(results: PutResult[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.shardId, (counts.get(r.shardId) ?? 0) + 1);
  return counts;
}
