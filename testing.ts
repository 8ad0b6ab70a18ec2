/**
 * What tests, benchmarks and simulations plug into streambolt instead of Kinesis: the
 * {@linkcode RecordSource} seam (`ShardSnapshotter`'s `source` option, where pages of records
 * come from), {@linkcode scriptedSource} to play back records you give it, and the shapes a
 * Kinesis or S3 client double implements ({@linkcode CommandLike}, {@linkcode SendOptions};
 * the clients themselves are `KinesisClientLike` and `S3ClientLike` in the main module).
 *
 * @example Test a generator without Kinesis
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import {
 *   FileSnapshotStore,
 *   type KinesisClientLike,
 *   kvGenerator,
 *   ShardSnapshotFinder,
 *   ShardSnapshotter,
 * } from "@streambolt/streambolt";
 * import { scriptedSource } from "@streambolt/streambolt/testing";
 *
 * const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
 * const shard = { stream: "orders", shardId: "shardId-000000000000" };
 * const store = new FileSnapshotStore({ root: "./test-snapshots" });
 * await new ShardSnapshotter({
 *   ...shard,
 *   kinesis: {} as KinesisClientLike, // never called: the records come from the source
 *   store,
 *   localPath: "./test-work",
 *   generator: kvGenerator(),
 *   source: scriptedSource([
 *     { sequenceNumber: "1", partitionKey: "order-1", data: encode({ total: 5 }) },
 *     { sequenceNumber: "2", partitionKey: "order-2", data: encode({ total: 7 }) },
 *   ]),
 * }).snapshotShard();
 *
 * const finder = new ShardSnapshotFinder({ ...shard, store, localPath: "./test-local" });
 * const latest = await finder.downloadLatestSnapshot();
 * const db = new DatabaseSync(latest!.localFile, { readOnly: true });
 * const keys = db.prepare("SELECT key FROM kv ORDER BY key").all().map((row) => row.key);
 * assert.deepEqual(keys, ["order-1", "order-2"]);
 * db.close();
 * ```
 *
 * @module
 */
export type { CommandLike, SendOptions } from "./src/aws_client.ts";
export type { RecordSource } from "./src/shard_snapshotter.ts";
export { scriptedSource, type ScriptedSourceOptions } from "./src/scripted_source.ts";
