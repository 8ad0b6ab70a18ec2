/**
 * Figure 12's floor, in its own process: the CPU of reading a shard's pages with plain
 * `fetch` + `JSON.parse` + base64 decoding (no SDK), and of the sums generator applying the
 * same records to a SQLite file alone (one transaction a page, no snapshotter). Prints
 * `{ records, readCpuS, readWallS, applyCpuS }` as JSON; CPU is this process's user + system
 * time around each part, so start-up is not in it; `readWallS` is the reading's elapsed time
 * (mostly the emulator serving the pages). With `streaming`, it reads and applies one page at a
 * time instead and prints `{ records }`: its peak RSS is the memory a run needs for its pages.
 *
 * Usage: `_lean_floor.ts KINESIS_ENDPOINT STREAM SHARD_ID DB_PATH [streaming]`
 *
 * @module
 */
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import type { ShardRecord } from "../mod.ts";
import { sumsGenerator } from "./_sums.ts";

const [endpoint, stream, shardId, dbPath, mode] = Deno.args;

const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

/** One Kinesis JSON call, unsigned (the emulator does not check signatures). */
async function call(target: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `Kinesis_20131202.${target}`,
      "x-amz-date": "20260101T000000Z",
      authorization:
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0",
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`Cannot call ${target} as it failed: ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

interface WireRecord {
  SequenceNumber: string;
  PartitionKey: string;
  Data: string;
  ApproximateArrivalTimestamp?: number;
}

/** The shard's pages to its tip, each record decoded as streambolt's reader must. */
async function* pages(): AsyncGenerator<ShardRecord[]> {
  let iterator = (await call("GetShardIterator", {
    StreamName: stream,
    ShardId: shardId,
    ShardIteratorType: "TRIM_HORIZON",
  })).ShardIterator as string | undefined;
  while (iterator) {
    const out = await call("GetRecords", { ShardIterator: iterator, Limit: 10_000 });
    const wire = (out.Records ?? []) as WireRecord[];
    yield wire.map((r) => ({
      sequenceNumber: r.SequenceNumber,
      partitionKey: r.PartitionKey,
      data: Uint8Array.fromBase64(r.Data),
      approximateArrivalTimestamp: r.ApproximateArrivalTimestamp === undefined
        ? undefined
        : new Date(r.ApproximateArrivalTimestamp * 1000),
    }));
    if (wire.length === 0 && out.MillisBehindLatest === 0) break;
    iterator = out.NextShardIterator as string | undefined;
  }
}

const db = new DatabaseSync(dbPath);
const generator = sumsGenerator();
await generator.onStart?.(db);
const apply = async (records: ShardRecord[]) => {
  db.exec("BEGIN");
  await generator.onRecords(db, { shardId, records, millisBehindLatest: 0 });
  db.exec("COMMIT");
};

if (mode === "streaming") {
  // The memory floor: one page at a time, read, applied and let go, as a run must hold it.
  let records = 0;
  for await (const page of pages()) {
    await apply(page);
    records += page.length;
  }
  db.close();
  console.log(JSON.stringify({ records }));
} else {
  const t0 = cpuSeconds();
  const w0 = performance.now();
  const read: ShardRecord[][] = [];
  for await (const page of pages()) read.push(page);
  const readWallS = (performance.now() - w0) / 1000;
  const t1 = cpuSeconds();
  for (const page of read) await apply(page);
  db.close();
  const t2 = cpuSeconds();
  console.log(JSON.stringify({
    records: read.reduce((n, p) => n + p.length, 0),
    readCpuS: t1 - t0,
    readWallS,
    applyCpuS: t2 - t1,
  }));
}
