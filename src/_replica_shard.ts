/**
 * Bringing one shard's replica file forward, for {@linkcode Replicator}: from the store (one
 * step per interval: list the shard's objects, apply what leads on from the file's point), or
 * from Kinesis (a reader that runs until the shard closes or the replicator stops).
 *
 * @module
 */
import { join } from "node:path";
import type { KinesisClientLike } from "./aws_client.ts";
import type { SnapshotGenerator } from "./generator.ts";
import type { RetryOptions } from "./kinesis/retry.ts";
import { readShard } from "./kinesis/shard_reader.ts";
import type { Logger } from "./logger.ts";
import type { ReplicaDir } from "./replica_dir.ts";
import type { FollowedShard } from "./replicate.ts";
import { planRestore, type RestorePlan } from "./_restore.ts";
import { listShardSnapshots } from "./_fetch.ts";
import { OtherPublicationError } from "./_delta.ts";
import { type ParentFile, SnapshotDb } from "./database.ts";
import type { Snapshot } from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";
import { recordReplicaLag } from "./_telemetry.ts";

/** What a shard's follower needs from the replicator. */
export interface ShardContext {
  store: SnapshotStore;
  stream: string;
  kinesis?: KinesisClientLike;
  generator?: SnapshotGenerator;
  pollIntervalMs: number;
  retry?: Partial<RetryOptions>;
  dir: ReplicaDir;
  /** Every followed shard, by id (a child is seeded from its parents' files). */
  shards: Map<string, FollowedShard>;
  logger: Logger;
  signal: AbortSignal;
}

/** Applies, once, whatever leads on in the store from the file's point (a full snapshot only
 * when no delta does). A failure is logged and tried again at the next step. */
export async function followShardFromStore(f: FollowedShard, c: ShardContext): Promise<void> {
  const shard = f.shard.shardId;
  try {
    const objects = await listShardSnapshots(c.store, c.stream, shard, "", c.signal);
    const from = f.file.metadata?.sequenceNumber;
    const plan = replicaPlan(objects, from);
    f.error = undefined;
    if (!plan || plan.path.length === 0) {
      f.state = f.file.metadata ? "following" : "waiting";
      return;
    }
    if (from !== undefined && plan.path[0].kind === "full") {
      c.logger.info("no delta leads on from the file's point: applying a full snapshot", {
        shard,
        sequenceNumber: from,
      });
    }
    c.logger.debug("applying point", {
      shard,
      sequenceNumber: plan.sequenceNumber,
      objects: plan.path.length,
    });
    const kind = await bringForward(f, c, plan, objects);
    pointApplied(f, c, kind);
  } catch (error) {
    failed(f, c, error);
  }
}

/** Brings the file to the plan's point; when the file holds another publication of its point
 * than the one the deltas were made on (the store lost it and a producer published it again
 * with other contents), to the newest point from a full snapshot instead. */
async function bringForward(
  f: FollowedShard,
  c: ShardContext,
  plan: RestorePlan,
  objects: Snapshot[],
): Promise<string> {
  try {
    return await f.file.bringForward(c.store, plan, c.signal);
  } catch (error) {
    const whole = planRestore(objects);
    if (!(error instanceof OtherPublicationError) || !whole) throw error;
    c.logger.warn(
      "the file's point was published again with other contents; applying a full snapshot",
      { shard: f.shard.shardId, sequenceNumber: f.file.metadata?.sequenceNumber, key: error.key },
    );
    return await f.file.bringForward(c.store, whole, c.signal);
  }
}

/**
 * The plan from the file's point: deltas whenever they reach the newest point (the file is
 * brought forward in place, a transaction per delta); a full snapshot only when no delta leads
 * there (a gap, a point published whole only, or no file yet).
 */
export function replicaPlan(objects: Snapshot[], from?: string): RestorePlan | undefined {
  const any = planRestore(objects, { from });
  if (from === undefined || !any || any.path[0]?.kind !== "full") return any;
  const deltas = planRestore(objects.filter((o) => o.kind === "delta"), { from });
  const same = deltas && deltas.sequenceNumber === any.sequenceNumber &&
    deltas.final === any.final;
  return same ? deltas : any;
}

function pointApplied(f: FollowedShard, c: ShardContext, kind: string, records?: number): void {
  const meta = f.file.metadata!;
  f.appliedAt = new Date().toISOString();
  f.state = meta.final ? "final" : "following";
  c.logger.info("applied point", {
    shard: f.shard.shardId,
    sequenceNumber: meta.sequenceNumber,
    kind,
    records,
    final: meta.final,
  });
}

function failed(f: FollowedShard, c: ShardContext, error: unknown): void {
  if (c.signal.aborted) return;
  f.state = "failing";
  f.error = (error as Error)?.message ?? String(error);
  c.logger.warn("cannot bring the replica file forward; trying again", {
    shard: f.shard.shardId,
    error: f.error,
  });
}

/**
 * Follows a shard through Kinesis until it closes or the replicator stops: the file is started
 * from the store's latest point, or seeded from the parents' final files, or bootstrapped;
 * then every page is applied in one transaction with its sequence number.
 */
export async function followShardFromKinesis(f: FollowedShard, c: ShardContext): Promise<void> {
  let db: SnapshotDb | undefined;
  try {
    if (!f.file.metadata && !(await createForKinesis(f, c))) return;
    db = await SnapshotDb.open(f.file.file, {
      stream: c.stream,
      shardId: f.shard.shardId,
      generator: c.generator!,
      durability: "replica",
    });
    f.file.refresh();
    f.state = db.final ? "final" : "following";
    if (!db.final) await readIntoFile(f, c, db);
  } catch (error) {
    failed(f, c, error);
  } finally {
    db?.close();
  }
}

async function readIntoFile(f: FollowedShard, c: ShardContext, db: SnapshotDb): Promise<void> {
  const pages = readShard(c.kinesis!, {
    stream: c.stream,
    shardId: f.shard.shardId,
    after: db.sequenceNumber,
    pollIntervalMs: c.pollIntervalMs,
    hashKeyRange: f.shard.hashKeyRange,
    retry: c.retry,
    signal: c.signal,
    logger: c.logger,
  });
  for await (const page of pages) {
    // A page that arrived is applied whole even when the replicator was stopped meanwhile.
    await db.applyPage(page);
    f.file.refresh();
    recordReplicaLag(
      { stream: c.stream, shardId: f.shard.shardId },
      "kinesis",
      page.millisBehindLatest,
    );
    if (page.records.length > 0 || page.closed) {
      pointApplied(f, c, "records", page.records.length);
    }
    if (page.closed || c.signal.aborted) return;
  }
}

/**
 * Creates a shard's file for following Kinesis: the store's latest point, else seeded from the
 * parents' final files, else empty. Waits (returns false) while a followed parent is not final.
 */
async function createForKinesis(f: FollowedShard, c: ShardContext): Promise<boolean> {
  const shard = f.shard.shardId;
  const objects = await listShardSnapshots(c.store, c.stream, shard, "", c.signal);
  const plan = planRestore(objects);
  if (plan) {
    pointApplied(f, c, await f.file.bringForward(c.store, plan, c.signal));
    return true;
  }
  const followed = f.shard.parentShards.map((p) => c.shards.get(p))
    .filter((p): p is FollowedShard => p !== undefined && p.state !== "retired");
  if (followed.some((p) => !p.file?.metadata?.final)) {
    f.state = "waiting";
    return false;
  }
  const parents: ParentFile[] = followed.map((p) => ({
    shardId: p.shard.shardId,
    file: p.file.file,
    metadata: p.file.metadata!,
  }));
  const aside = join(c.dir.path, `.full-${crypto.randomUUID()}.sqlite`);
  try {
    const db = await SnapshotDb.open(aside, {
      stream: c.stream,
      shardId: shard,
      generator: c.generator!,
      seed: parents.length > 0 && f.shard.hashKeyRange
        ? { parents, hashKeyRange: f.shard.hashKeyRange }
        : undefined,
    });
    db.close();
    await f.file.install(aside);
  } finally {
    await Deno.remove(aside).catch(() => {});
  }
  c.logger.info("created replica file", { shard, parents: parents.length });
  return true;
}
