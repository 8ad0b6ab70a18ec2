/**
 * streambolt snapshots Amazon Kinesis shards into SQLite files kept in S3 (or a local
 * directory), so that a consumer can start from the latest snapshot (download one file, open
 * it, read on after its sequence number) instead of replaying the stream.
 *
 * The producer, {@linkcode ShardSnapshotter}, brings a shard's latest snapshot up to date
 * through your {@linkcode SnapshotGenerator} and publishes it. The consumer,
 * {@linkcode ShardSnapshotFinder}, finds the latest snapshot and downloads it, verified.
 *
 * Two subpaths hold what producing and consuming do not need: `@streambolt/streambolt/testing`
 * (the record source a producer reads from, to feed it without Kinesis) and
 * `@streambolt/streambolt/format` (snapshot keys and the metadata table, as `docs/format.md`
 * specifies them). `docs/api.md` lists every export by role.
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
// Snapshots: what they are. Their keys and metadata table: `@streambolt/streambolt/format`.
export {
  BOOTSTRAP_SEQUENCE,
  type Snapshot,
  type SnapshotEncoding,
  type SnapshotKind,
} from "./src/snapshot_key.ts";
export type { AcceptedGap, SnapshotMetadata } from "./src/metadata.ts";
export {
  ConfigurationError,
  InvalidArgumentError,
  RetentionGapError,
  ShardReadError,
  SnapshotGeneratorError,
  SnapshotIntegrityError,
  SnapshotVanishedError,
} from "./src/errors.ts";
export { type LogFields, type Logger, silentLogger } from "./src/logger.ts";

// Records and generators.
export type { ChildShard, RecordBatch, ShardPage, ShardRecord } from "./src/records.ts";
export type { ParentSnapshot, ShardLineage, SnapshotGenerator } from "./src/generator.ts";
export { KV_TABLE_SQL, kvGenerator } from "./src/generators/kv.ts";
export { LOG_TABLE_SQL, logGenerator } from "./src/generators/log.ts";

// Kinesis. The shapes a client double implements: `@streambolt/streambolt/testing`.
export type { KinesisClientLike, S3ClientLike } from "./src/aws_client.ts";
export { readShard, type ReadShardOptions } from "./src/kinesis/shard_reader.ts";
export type { RetryOptions } from "./src/kinesis/retry_options.ts";
export {
  listStreamShards,
  type ListStreamShardsOptions,
  type StreamShard,
} from "./src/kinesis/list_shards.ts";
export { hashKeyOf, type HashKeyRange, inHashKeyRange } from "./src/kinesis/hash_key.ts";

// Stores.
export {
  type DeleteOptions,
  type DownloadOptions,
  type DownloadResult,
  type HeadOptions,
  type HeadResult,
  type ListOptions,
  ObjectExistsError,
  type PutOptions,
  type SnapshotStore,
  type StoredObject,
} from "./src/store/snapshot_store.ts";
export { FileSnapshotStore, type FileSnapshotStoreOptions } from "./src/store/file_store.ts";
export { S3SnapshotStore, type S3SnapshotStoreOptions } from "./src/store/s3_store.ts";
export { openStore, type OpenStoreOptions } from "./src/store/store_url.ts";

// Producing, consuming, collecting. The record source seam: `@streambolt/streambolt/testing`.
export { type ChainPolicy, DEFAULT_CHAIN_POLICY } from "./src/chain.ts";
export {
  type FollowOptions,
  ShardSnapshotter,
  type ShardSnapshotterOptions,
  type SnapshotProgress,
  type SnapshotShardOptions,
} from "./src/shard_snapshotter.ts";
export {
  type ShardOutcome,
  type StreamFollowOptions,
  StreamSnapshotError,
  StreamSnapshotter,
  type StreamSnapshotterOptions,
  type WorkerShare,
} from "./src/stream_snapshotter.ts";
export { FollowError } from "./src/stream_follow.ts";
export {
  type DownloadLatestOptions,
  type DownloadSnapshotOptions,
  type FindOptions,
  listSnapshots,
  type ListSnapshotsOptions,
  ShardSnapshotFinder,
  type ShardSnapshotFinderOptions,
} from "./src/finder.ts";
export {
  type AppliedDetail,
  LiveReplica,
  type LiveReplicaEventMap,
  type LiveReplicaOptions,
  type ReplicaState,
  type StartingPosition,
  startingPosition,
  type StartReplicaOptions,
} from "./src/live_replica.ts";
export {
  type ReplicaShardState,
  type ReplicaShardStatus,
  Replicator,
  type ReplicatorOptions,
  type RoutedShard,
} from "./src/replicate.ts";
export { ReplicaDirError } from "./src/replica_dir.ts";
export { ReplicaFileError } from "./src/replica_file.ts";
export {
  DEFAULT_MAX_AGE_MS,
  type ShardStatus,
  type StatusProblem,
  type StreamStatus,
  streamStatus,
  type StreamStatusOptions,
} from "./src/status.ts";
export {
  collectGarbage,
  type CollectGarbageOptions,
  type GarbageCollectionOptions,
  type GarbageCollectionResult,
  type SnapshotChain,
} from "./src/gc.ts";
export { DEFAULT_RETENTION, type RetentionPlan, type RetentionPolicy } from "./src/retention.ts";
