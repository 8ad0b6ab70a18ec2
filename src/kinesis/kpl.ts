/**
 * Deaggregation of records written by the Kinesis Producer Library in aggregated form: the
 * magic bytes `F3 89 9A C2`, a protobuf `AggregatedRecord`, then the MD5 of the protobuf bytes.
 * The protobuf is decoded by a decoder written for the KPL's one message definition
 * (`_aggregated_record.ts`), so that reading a shard loads no protobuf library.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ShardRecord } from "../records.ts";
import { decodeAggregatedRecord } from "./_aggregated_record.ts";

const MAGIC = [0xf3, 0x89, 0x9a, 0xc2];
const MD5_LENGTH = 16;

/**
 * Whether a record's data starts with the KPL aggregation magic bytes.
 *
 * @param data A record's data.
 * @returns True for a (claimed) aggregated record.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { isAggregated } from "./kpl.ts";
 * assert.equal(isAggregated(new TextEncoder().encode("{\"plain\": true}")), false);
 * ```
 */
export function isAggregated(data: Uint8Array): boolean {
  return data.length > MAGIC.length + MD5_LENGTH && MAGIC.every((b, i) => data[i] === b);
}

/**
 * Splits an aggregated record into its user records, each with the aggregate's sequence number,
 * its own `subSequenceNumber`, partition key and explicit hash key. A record that is not
 * aggregated, whose MD5 does not match, or whose body does not decode, is returned as it is.
 *
 * @param record A record read from a shard.
 * @returns The user records, in order.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { deaggregate } from "./kpl.ts";
 * const plain = { sequenceNumber: "1", partitionKey: "a", data: new Uint8Array([1, 2]) };
 * assert.deepEqual(deaggregate(plain), [plain]); // not an aggregate: passed through as it is
 * ```
 */
export function deaggregate(record: ShardRecord): ShardRecord[] {
  const data = record.data;
  if (!isAggregated(data)) return [record];
  const body = data.subarray(MAGIC.length, data.length - MD5_LENGTH);
  const digest = createHash("md5").update(body).digest();
  const trailer = data.subarray(data.length - MD5_LENGTH);
  for (let i = 0; i < MD5_LENGTH; i++) if (digest[i] !== trailer[i]) return [record];
  const message = decodeAggregatedRecord(body);
  if (!message) return [record];
  const out: ShardRecord[] = [];
  message.records.forEach((r, i) => {
    const partitionKey = message.partitionKeys[r.partitionKeyIndex];
    const explicitHashKey = r.explicitHashKeyIndex === undefined
      ? undefined
      : message.explicitHashKeys[r.explicitHashKeyIndex];
    out.push({
      sequenceNumber: record.sequenceNumber,
      subSequenceNumber: i,
      partitionKey: partitionKey ?? record.partitionKey,
      explicitHashKey,
      data: r.data,
      approximateArrivalTimestamp: record.approximateArrivalTimestamp,
    });
  });
  return out;
}
