/**
 * Kinesis hash keys: where a record lands in a stream's 128-bit hash key space. A record's hash
 * key is its explicit hash key when it has one, else the MD5 of its partition key read as a
 * big-endian 128-bit integer.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** A shard's range of hash keys, inclusive, as decimal strings. */
export interface HashKeyRange {
  /** The first hash key of the range. */
  startingHashKey: string;
  /** The last hash key of the range. */
  endingHashKey: string;
}

/**
 * The hash key Kinesis routes a record by.
 *
 * @param partitionKey The record's partition key.
 * @param explicitHashKey The record's explicit hash key, if it has one.
 * @returns The hash key as a 128-bit integer.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashKeyOf } from "./hash_key.ts";
 * assert.ok(hashKeyOf("user-1") < 2n ** 128n);
 * assert.equal(hashKeyOf("user-1", "42"), 42n); // an explicit hash key wins
 * ```
 */
export function hashKeyOf(partitionKey: string, explicitHashKey?: string | null): bigint {
  if (explicitHashKey) return BigInt(explicitHashKey);
  const digest = createHash("md5").update(partitionKey, "utf8").digest("hex");
  return BigInt("0x" + digest);
}

/**
 * Whether a hash key lies in a range.
 *
 * @param hashKey The hash key.
 * @param range The range (inclusive).
 * @returns True when `start <= hashKey <= end`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { inHashKeyRange } from "./hash_key.ts";
 * assert.ok(inHashKeyRange(5n, { startingHashKey: "0", endingHashKey: "9" }));
 * ```
 */
export function inHashKeyRange(hashKey: bigint, range: HashKeyRange): boolean {
  return hashKey >= BigInt(range.startingHashKey) && hashKey <= BigInt(range.endingHashKey);
}
