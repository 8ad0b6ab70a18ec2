/**
 * streambolt snapshots Amazon Kinesis shards into SQLite files kept in S3 (or a local
 * directory), so that a consumer can start from the latest snapshot (download one file, open
 * it, read on after its sequence number) instead of replaying the stream.
 *
 * The producer, {@linkcode ShardSnapshotter}, brings a shard's latest snapshot up to date
 * through your {@linkcode SnapshotGenerator} and publishes it. The consumer,
 * {@linkcode ShardSnapshotFinder}, finds the latest snapshot and downloads it, verified.
 *
 * @example Produce and consume a snapshot
 * ```ts ignore
 * import { DatabaseSync } from "node:sqlite";
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { S3Client } from "@aws-sdk/client-s3";
 * import {
 *   kvGenerator,
 *   S3SnapshotStore,
 *   ShardSnapshotFinder,
 *   ShardSnapshotter,
 * } from "@streambolt/streambolt";
 *
 * const store = new S3SnapshotStore({
 *   client: new S3Client({}),
 *   bucket: "my-bucket",
 *   prefix: "snapshots",
 * });
 * const shard = { stream: "orders", shardId: "shardId-000000000000" };
 *
 * // Producer, run on a schedule:
 * await new ShardSnapshotter({
 *   ...shard,
 *   kinesis: new KinesisClient({}),
 *   store,
 *   localPath: "./work",
 *   generator: kvGenerator(),
 * }).snapshotShard();
 *
 * // Consumer, at start-up:
 * const finder = new ShardSnapshotFinder({ ...shard, store, localPath: "./local" });
 * const latest = await finder.findLatestSnapshot();
 * if (latest) {
 *   await finder.downloadSnapshot(latest);
 *   const db = new DatabaseSync(latest.localFile, { readOnly: true });
 *   // ...then read the shard AFTER_SEQUENCE_NUMBER latest.sequenceNumber
 *   db.close();
 * }
 * ```
 *
 * @module
 */
export * from "./src/snapshot.ts";
export * from "./src/errors.ts";
export type { LogFields, Logger } from "./src/logger.ts";
export { silentLogger } from "./src/logger.ts";
export type { SnapshotGenerator } from "./src/generator.ts";
export type {
  ChildShard,
  ReadShardOptions,
  RecordBatch,
  ShardPage,
  ShardRecord,
} from "./src/kinesis/shard_reader.ts";
export { readShard } from "./src/kinesis/shard_reader.ts";
export type { RetryOptions } from "./src/kinesis/_retry.ts";
export {
  FORMAT_VERSION,
  META_TABLE,
  readSnapshotMetadata,
  type SnapshotMetadata,
} from "./src/metadata.ts";
export * from "./src/store/snapshot_store.ts";
export * from "./src/store/file_store.ts";
export * from "./src/store/s3_store.ts";
export * from "./src/snapshotter.ts";
export * from "./src/finder.ts";
export { KV_TABLE_SQL, kvGenerator } from "./src/generators/kv.ts";
export { LOG_TABLE_SQL, logGenerator } from "./src/generators/log.ts";
export type { AwsClient } from "./src/aws_client.ts";
export * from "./src/store/store_url.ts";
export * from "./src/gc.ts";
export * from "./src/stream_snapshotter.ts";
export type { ParentSnapshot, ShardLineage } from "./src/generator.ts";
export { hashKeyOf, type HashKeyRange, inHashKeyRange } from "./src/kinesis/hash_key.ts";
export { listStreamShards, type StreamShard } from "./src/kinesis/list_shards.ts";
export { deaggregate, isAggregated } from "./src/kinesis/kpl.ts";
export * from "./src/live_replica.ts";
