/**
 * How fresh a stream's snapshots are, for alerts and probes: {@linkcode streamStatus} reports,
 * for every shard of the stream (open and closed), its newest restorable point, how old it is,
 * how far it trails the shard, and whether the check fails. It reads the store's listing and
 * each point's metadata (one {@linkcode SnapshotStore.head} per shard); it downloads nothing.
 *
 * A producer publishes nothing when a shard has no new records, so an idle shard's snapshot
 * grows old while it is complete: before calling an open shard's old snapshot stale, the check
 * reads the first record after it (one GetShardIterator and one GetRecords of one record), and
 * passes the shard when none waits, or when the first one arrived less than `maxAgeMs` ago.
 *
 * Without a Kinesis client, the check reports what the store alone knows (see
 * {@linkcode StreamStatus.kinesis}).
 *
 * @module
 */
import type { KinesisClientLike } from "./aws_client.ts";
import { listStreamShards, type StreamShard } from "./kinesis/list_shards.ts";
import { streamRetentionHours } from "./kinesis/retention.ts";
import { type WaitingRecords, waitingRecords } from "./kinesis/waiting_records.ts";
import { planRestore } from "./restore_plan.ts";
import { listShardSnapshots } from "./_fetch.ts";
import { InvalidArgumentError } from "./errors.ts";
import {
  assertName,
  BOOTSTRAP_SEQUENCE,
  type Snapshot,
  type SnapshotKind,
} from "./snapshot_key.ts";
import type { HeadResult, SnapshotStore } from "./store/snapshot_store.ts";

/** The default of {@linkcode StreamStatusOptions.maxAgeMs}: 15 minutes. */
export const DEFAULT_MAX_AGE_MS = 15 * 60_000;

const HOUR_MS = 3_600_000;

/**
 * Why a shard fails the check:
 * - `missing`: an open shard has no restorable snapshot;
 * - `stale`: an open shard's newest point is older than `maxAgeMs` (or its age is unknown),
 *   and a record that arrived more than `maxAgeMs` ago waits after it;
 * - `retention`: a point that is not final trails the shard by more than half the stream's
 *   retention ({@linkcode ShardStatus.retentionAtRisk}).
 */
export type StatusProblem = "missing" | "stale" | "retention";

/** One shard's row of {@linkcode StreamStatus}. Fields the store cannot tell are `undefined`. */
export interface ShardStatus {
  /** The shard id. */
  shardId: string;
  /** True when the shard was closed by a reshard. Without Kinesis, true only for a shard
   * whose point is final (a closed shard whose producer has not finished it shows open). */
  closed: boolean;
  /** The shards this one continues (after a split or merge). */
  parentShards: string[];
  /** The sequence number of the newest restorable point; `undefined` when there is none. */
  sequenceNumber?: string;
  /** The kind of the point's newest object: a full snapshot, or the last delta of a chain. */
  kind?: SnapshotKind;
  /** True when the point is final: the shard is closed and every record of it is applied. */
  final: boolean;
  /** The key of the point's newest object. */
  key?: string;
  /** The stored size of that object in bytes. */
  size?: number;
  /** When that object was written. */
  lastModified?: Date;
  /** How old that object is, in ms (`checkedAt - lastModified`, at least 0). */
  ageMs?: number;
  /** Deltas after the full snapshot on the way to the point (0 for a full snapshot). */
  chainLength?: number;
  /** Records applied across the point's lineage (object metadata `records-applied`). */
  recordsApplied?: number;
  /** Records skipped as bad across the lineage (object metadata `records-skipped`). */
  recordsSkipped?: number;
  /** Retention gaps the producer was told to accept (object metadata `accepted-gaps`). */
  acceptedGaps?: number;
  /** When the point's last applied record arrived in the stream (`last-arrival-at`). */
  lastArrivalAt?: Date;
  /** For a point that is not final: how far the snapshot trails the shard, the time since
   * its last applied record arrived (`checkedAt - lastArrivalAt`), in ms. */
  trailMs?: number;
  /**
   * Whether a record waits after the point, not yet in any snapshot: asked of Kinesis only for
   * an open shard whose point is older than `maxAgeMs` (`undefined` otherwise). False means
   * the shard is idle and its snapshot complete, however old.
   */
  recordsWaiting?: boolean;
  /** When the first record after the point arrived, when one waits. */
  waitingSince?: Date;
  /**
   * True when the point is not final and its last record arrived (or, when that is unknown,
   * the object was written) longer ago than half the stream's retention. Once it passes the
   * whole retention, the records after it may be trimmed, and a producer stops with a
   * `RetentionGapError` unless it is told to accept the gap.
   */
  retentionAtRisk: boolean;
  /** Why this shard fails the check; empty when it passes. */
  problems: StatusProblem[];
}

/** What {@linkcode streamStatus} found. */
export interface StreamStatus {
  /** The stream name. */
  stream: string;
  /** When the check was made: ages are measured from it. */
  checkedAt: Date;
  /** The age above which an open shard's snapshot is stale, in ms. */
  maxAgeMs: number;
  /** Whether Kinesis was asked. Without it, the shards are those the store holds objects of
   * (a shard with none is not listed, so none is `missing`), `closed` is known only for final
   * points, no point is judged at risk of the retention, and an old point is `stale` (whether
   * records wait after it is unknown). */
  kinesis: boolean;
  /** The stream's retention period, in hours; `undefined` without Kinesis. */
  retentionHours?: number;
  /** One row per shard, in the order Kinesis lists them (parents before children). */
  shards: ShardStatus[];
  /** True when no shard has a problem; without Kinesis, also only when the store holds a point
   * of the stream (with nothing to judge, the check does not pass). */
  ok: boolean;
}

/** Options for {@linkcode streamStatus}. */
export interface StreamStatusOptions {
  /** The Kinesis client (a `KinesisClient`): ListShards, DescribeStreamSummary, and for an
   * open shard with an old snapshot GetShardIterator and GetRecords. Its own retries (the
   * SDK's `maxAttempts`) are the retry budget of each call: the check adds none. Left out,
   * the check reads the store alone (see {@linkcode StreamStatus.kinesis}). */
  kinesis?: KinesisClientLike;
  /** Where the snapshots are. Without {@linkcode SnapshotStore.head}, the fields that come
   * from object metadata are `undefined`. */
  store: SnapshotStore;
  /** The stream name. */
  stream: string;
  /** An open shard whose newest point is older than this (in ms) is stale. Defaults to
   * {@linkcode DEFAULT_MAX_AGE_MS}. */
  maxAgeMs?: number;
  /** How many objects are read (HEAD), or shards asked for waiting records, at once. Defaults
   * to 4, as every `concurrency` of streambolt. */
  concurrency?: number;
  /** The time to measure ages from. Defaults to now. */
  now?: Date;
  /** Aborts the check. */
  signal?: AbortSignal;
}

/**
 * Checks how fresh the snapshots of every shard of a stream are. A shard fails the check when
 * it is open and has no snapshot, or one older than `maxAgeMs` that lacks a record which
 * arrived more than `maxAgeMs` ago; any shard fails when its point is not final and trails the
 * shard by more than half the stream's retention.
 *
 * @param options The Kinesis client, the store, the stream and the maximum age.
 * @returns A row per shard, and whether the stream passes.
 * @throws {InvalidArgumentError} When the stream does not exist or its name is not valid.
 *
 * @example Alert on stale snapshots
 * ```ts
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { FileSnapshotStore, streamStatus } from "../mod.ts";
 *
 * // For a cron alert or a probe: true when every open shard has a snapshot at most 15 minutes
 * // old and no shard's snapshot trails it by more than half the stream's retention.
 * async function snapshotsAreFresh(): Promise<boolean> {
 *   const status = await streamStatus({
 *     kinesis: new KinesisClient({}),
 *     store: new FileSnapshotStore({ root: "./snapshots" }),
 *     stream: "orders",
 *     maxAgeMs: 15 * 60_000,
 *   });
 *   for (const shard of status.shards.filter((s) => s.problems.length > 0)) {
 *     console.error(`${shard.shardId}: ${shard.problems.join(", ")}`);
 *   }
 *   return status.ok;
 * }
 * ```
 */
export async function streamStatus(options: StreamStatusOptions): Promise<StreamStatus> {
  const { kinesis, store, signal } = options;
  const stream = assertName("stream", options.stream);
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  if (!Number.isFinite(maxAgeMs) || maxAgeMs < 0) {
    throw new InvalidArgumentError(
      `Cannot check status as the maximum age must be a number of ms of at least 0: current value is ${maxAgeMs}`,
    );
  }
  const [known, objects] = await Promise.all([
    kinesis ? kinesisShards(kinesis, stream, signal) : undefined,
    listShardSnapshots(store, stream, undefined, "", signal),
  ]);
  const shards = known?.shards ?? storeShards(objects);
  const limits = {
    checkedAt: options.now ?? new Date(),
    maxAgeMs,
    retentionHours: known?.retentionHours,
  };
  const limit = options.concurrency ?? 4;
  const points = await mapLimited(shards, limit, async (shard) => {
    const point = newestPoint(objects, shard.shardId);
    const head = point && store.head ? await store.head(point.target.key, { signal }) : undefined;
    return { shard, point, head };
  });
  const rows = await mapLimited(points, limit, async ({ shard, point, head }) => {
    const row = shardStatus(shard, point, head, limits);
    if (!kinesis || !row.problems.includes("stale")) return row;
    // Old, but perhaps complete: is anything waiting after it?
    const { sequenceNumber } = point!.target;
    const after = sequenceNumber === BOOTSTRAP_SEQUENCE ? undefined : sequenceNumber;
    const waiting = await waitingRecords(kinesis, stream, shard.shardId, after, signal);
    return shardStatus(shard, point, head, limits, waiting);
  });
  return {
    stream,
    checkedAt: limits.checkedAt,
    maxAgeMs,
    kinesis: kinesis !== undefined,
    retentionHours: known?.retentionHours,
    shards: rows,
    ok: rows.every((r) => r.problems.length === 0) && (kinesis !== undefined || rows.length > 0),
  };
}

/** What a row needs of a shard. */
type ShardInfo = Pick<StreamShard, "shardId" | "closed" | "parentShards">;

/** The shards Kinesis lists (parents before children), and the stream's retention. */
async function kinesisShards(
  kinesis: KinesisClientLike,
  stream: string,
  signal?: AbortSignal,
): Promise<{ shards: ShardInfo[]; retentionHours: number }> {
  // ListShards first: it names a stream that does not exist as such.
  const shards = await listStreamShards(kinesis, stream, { signal });
  return { shards, retentionHours: await streamRetentionHours(kinesis, stream, signal) };
}

/** Without Kinesis: the shards the store holds objects of, by id; closed when known final
 * (see {@linkcode shardStatus}). */
function storeShards(objects: Snapshot[]): ShardInfo[] {
  return [...new Set(objects.map((s) => s.shardId))].sort()
    .map((shardId) => ({ shardId, closed: false, parentShards: [] }));
}

/** A shard's newest restorable point: its newest object and the deltas on the way. */
interface Point {
  target: Snapshot;
  chainLength: number;
}

function newestPoint(objects: Snapshot[], shardId: string): Point | undefined {
  const plan = planRestore(objects.filter((s) => s.shardId === shardId));
  if (!plan?.target) return undefined;
  return { target: plan.target, chainLength: plan.path.filter((s) => s.kind === "delta").length };
}

/** What the check measures against. */
interface Limits {
  checkedAt: Date;
  maxAgeMs: number;
  /** Unknown without Kinesis: then no point is judged at risk. */
  retentionHours?: number;
}

/**
 * One shard's row, from its newest point and that object's metadata. An open shard's old point
 * is stale until `waiting` (what Kinesis holds after it) says otherwise.
 */
function shardStatus(
  shard: ShardInfo,
  point: Point | undefined,
  head: HeadResult | undefined,
  limits: Limits,
  waiting?: WaitingRecords,
): ShardStatus {
  // A final point is a closed shard's, whether or not Kinesis was asked.
  const base = {
    shardId: shard.shardId,
    closed: shard.closed || Boolean(point?.target.final),
    parentShards: shard.parentShards,
  };
  if (!point) {
    return {
      ...base,
      final: false,
      retentionAtRisk: false,
      problems: base.closed ? [] : ["missing"],
    };
  }
  const { target } = point;
  const now = limits.checkedAt.getTime();
  const lastModified = target.lastModified ?? head?.lastModified;
  const meta = head?.metadata ?? {};
  const lastArrivalAt = dateOf(meta["last-arrival-at"]);
  const since = (d: Date | undefined) => d && Math.max(0, now - d.getTime());
  const ageMs = since(lastModified);
  const trailMs = target.final ? undefined : since(lastArrivalAt);
  const reference = since(lastArrivalAt ?? lastModified);
  const retentionAtRisk = atRisk(target, reference, limits.retentionHours);
  const waited = since(waiting?.waitingSince);
  const stale = !base.closed && (ageMs === undefined || ageMs > limits.maxAgeMs) &&
    (!waiting || (waiting.recordsWaiting && (waited === undefined || waited > limits.maxAgeMs)));
  return {
    ...base,
    sequenceNumber: target.sequenceNumber,
    kind: target.kind,
    final: target.final,
    key: target.key,
    size: target.size ?? head?.size,
    lastModified,
    ageMs,
    chainLength: point.chainLength,
    recordsApplied: countOf(meta["records-applied"]),
    recordsSkipped: countOf(meta["records-skipped"]),
    // Written only when there is one; metadata without it (but with a count) means none.
    acceptedGaps: countOf(meta["accepted-gaps"]) ??
      (meta["records-applied"] !== undefined ? 0 : undefined),
    lastArrivalAt,
    trailMs,
    recordsWaiting: waiting?.recordsWaiting,
    waitingSince: waiting?.waitingSince,
    retentionAtRisk,
    problems: [
      ...(stale ? ["stale" as const] : []),
      ...(retentionAtRisk ? ["retention" as const] : []),
    ],
  };
}

/** Whether a point that is not final is older (`reference`, in ms) than half the retention;
 * never when the retention is unknown. */
function atRisk(
  target: Snapshot,
  reference: number | undefined,
  retentionHours: number | undefined,
): boolean {
  return !target.final && target.sequenceNumber !== BOOTSTRAP_SEQUENCE &&
    reference !== undefined && retentionHours !== undefined &&
    reference > (retentionHours * HOUR_MS) / 2;
}

function countOf(text: string | undefined): number | undefined {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

function dateOf(text: string | undefined): Date | undefined {
  const ms = text === undefined ? NaN : Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** Maps `items` through `fn`, at most `limit` at once, keeping their order. */
async function mapLimited<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R> | R,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
