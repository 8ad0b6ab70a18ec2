/**
 * Whole-stream snapshots: {@linkcode StreamSnapshotter} snapshots every shard of a stream with
 * a concurrency limit, in lineage order (a child shard never before its parents are final),
 * optionally only a stable share of the shards when several workers split the stream.
 *
 * @module
 */
import { anySignal } from "./_signal.ts";
import { StreamFollow } from "./stream_follow.ts";
import { listShardSnapshots } from "./_fetch.ts";
import { InvalidArgumentError } from "./errors.ts";
import { listStreamShards, type StreamShard } from "./kinesis/list_shards.ts";
import { type Logger, silentLogger } from "./logger.ts";
import type { Snapshot } from "./snapshot_key.ts";
import {
  ShardSnapshotter,
  type ShardSnapshotterOptions,
  type SnapshotShardOptions,
} from "./shard_snapshotter.ts";

/** Which share of the shards one worker takes: shards whose id hashes to `index` mod `count`. */
export interface WorkerShare {
  /** This worker's index, `0 <= index < count`. */
  index: number;
  /** How many workers split the stream. */
  count: number;
}

/** Options for {@linkcode StreamSnapshotter}. */
export interface StreamSnapshotterOptions
  extends Omit<ShardSnapshotterOptions, "shardId" | "parents" | "hashKeyRange"> {
  /** How many shards to snapshot at once. Defaults to 4. */
  concurrency?: number;
  /** Take only this worker's share of the shards. */
  worker?: WorkerShare;
  /** Only these shards (and only if they fall in this worker's share). */
  shardIds?: string[];
}

/** What happened to one shard in {@linkcode StreamSnapshotter.snapshotStream}. */
export interface ShardOutcome {
  /** The shard. */
  shardId: string;
  /** `done`: snapshotted (or already final); `waiting`: a parent is not final yet;
   * `failed`: the run failed; `other-worker`: another worker's share. */
  status: "done" | "waiting" | "failed" | "other-worker";
  /** The shard's latest snapshot after the run, when done. */
  snapshot?: Snapshot;
  /** Why it failed. */
  error?: unknown;
}

/** Thrown by {@linkcode StreamSnapshotter.snapshotStream} when some shards failed. */
export class StreamSnapshotError extends Error {
  /** Every shard's outcome, the successful ones included. */
  readonly outcomes: ShardOutcome[];

  /**
   * Creates the error.
   *
   * @param outcomes Every shard's outcome.
   */
  constructor(outcomes: ShardOutcome[]) {
    const failed = outcomes.filter((o) => o.status === "failed");
    super(
      `Cannot snapshot ${failed.length} of ${outcomes.length} shards: ${
        failed.map((o) => `${o.shardId}: ${(o.error as Error)?.message ?? o.error}`).join("; ")
      }`,
      { cause: failed[0]?.error },
    );
    this.name = "StreamSnapshotError";
    this.outcomes = outcomes;
  }
}

/**
 * Whether a shard is in a worker's share: FNV-1a of the shard id, modulo the worker count.
 * Stable across runs and machines.
 *
 * @param shardId The shard id.
 * @param worker The worker's share.
 * @returns True when this worker takes the shard.
 *
 * @example Usage
 * ```ts
 * import { ownsShard } from "./stream_snapshotter.ts";
 * const shards = ["shardId-000000000000", "shardId-000000000001"];
 * shards.filter((s) => ownsShard(s, { index: 0, count: 2 }));
 * ```
 */
export function ownsShard(shardId: string, worker: WorkerShare): boolean {
  let hash = 0x811c9dc5;
  for (let i = 0; i < shardId.length; i++) {
    hash ^= shardId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % worker.count === worker.index;
}

/** Whether a shard to snapshot has a parent the stream still lists (whose final snapshot the
 * run must look up). */
function hasListedParents(shards: StreamShard[], shardIds: string[] | undefined): boolean {
  const listed = new Set(shards.map((s) => s.shardId));
  return shards.some((s) =>
    (!shardIds || shardIds.includes(s.shardId)) && s.parentShards.some((p) => listed.has(p))
  );
}

/**
 * Snapshots every shard of a stream.
 *
 * Closed shards whose final snapshot exists are not read again. A child shard (after a split
 * or merge) waits until its parents' final snapshots exist, then starts from them through the
 * generator's `onParents` hook (or empty, at its `TRIM_HORIZON`, without the hook).
 *
 * @example Usage
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { FileSnapshotStore, kvGenerator, StreamSnapshotter } from "../mod.ts";
 * const snapshots = await new StreamSnapshotter({
 *   kinesis: new KinesisClient({}),
 *   store: new FileSnapshotStore({ root: "./snapshots" }),
 *   stream: "orders",
 *   localPath: "./work",
 *   generator: kvGenerator(),
 *   concurrency: 4,
 * }).snapshotStream();
 * ```
 */
export class StreamSnapshotter {
  #options: StreamSnapshotterOptions;
  #outcomes: ShardOutcome[] = [];

  /**
   * Creates a snapshotter for a whole stream.
   *
   * @param options As for {@linkcode ShardSnapshotter}, plus concurrency and worker share.
   */
  constructor(options: StreamSnapshotterOptions) {
    const w = options.worker;
    if (
      w && (!Number.isInteger(w.count) || w.count < 1 || !Number.isInteger(w.index) ||
        w.index < 0 || w.index >= w.count)
    ) {
      throw new InvalidArgumentError(
        `Cannot split shards as the worker must be I/N with 0 <= I < N: current value is ${w.index}/${w.count}`,
      );
    }
    const c = options.concurrency ?? 4;
    if (!Number.isInteger(c) || c < 1) {
      throw new InvalidArgumentError(
        `Cannot snapshot as concurrency must be a whole number of at least 1: current value is ${c}`,
      );
    }
    this.#options = options;
  }

  /** Every shard's outcome in the last {@linkcode snapshotStream} run. */
  get outcomes(): ShardOutcome[] {
    return this.#outcomes;
  }

  /**
   * Snapshots this worker's shards of the stream, parents before children.
   *
   * @param options Aborts this run; nothing more is published.
   * @returns The latest snapshot of every shard handled (snapshotted, or already final).
   * @throws {StreamSnapshotError} When some shard failed; the others are still done.
   */
  async snapshotStream(options?: SnapshotShardOptions): Promise<Snapshot[]> {
    const o = this.#options;
    const signal = anySignal(o.signal, options?.signal);
    const shards = await listStreamShards(o.kinesis, o.stream, { signal, retry: o.retry });
    for (const id of o.shardIds ?? []) {
      if (!shards.some((s) => s.shardId === id)) {
        throw new InvalidArgumentError(
          `Cannot snapshot shard as the stream has no such shard: current value is ${
            JSON.stringify(id)
          }`,
        );
      }
    }
    // One listing of the whole stream's snapshots: the final ones tell which parents are done.
    // Only parents still in the stream need it: without them (no resharding, or parents past
    // retention) each shard's own listing is the run's only one.
    const stored = hasListedParents(shards, o.shardIds)
      ? await listShardSnapshots(o.store, o.stream, undefined, o.localPath, signal)
      : [];
    const run = new StreamRun({ ...o, signal }, shards, stored.filter((s) => s.final));
    this.#outcomes = await run.run();
    if (this.#outcomes.some((x) => x.status === "failed")) {
      throw new StreamSnapshotError(this.#outcomes);
    }
    return this.#outcomes.flatMap((x) => (x.snapshot ? [x.snapshot] : []));
  }

  /**
   * Follows this worker's shards continuously: each is read as records arrive and publishes a
   * point every `publishEveryMs` when something changed ({@linkcode ShardSnapshotter.follow}).
   * Resharding is followed: a closed shard publishes its final snapshot and stops, and its
   * children start once their parents' final snapshots exist (the stream's shards are listed
   * again every interval). Every shard of the share is followed at once (`concurrency` does not
   * apply).
   *
   * @param options The publish interval and the stop signal.
   * @returns Every shard's latest point when it stopped.
   * @throws {FollowError} When a shard failed; the others were stopped after publishing.
   */
  async follow(options: StreamFollowOptions): Promise<Snapshot[]> {
    const o = this.#options;
    const stop = anySignal(o.signal, options.stop ?? options.signal) ??
      new AbortController().signal;
    return await new StreamFollow({
      ...o,
      owns: (shardId) => !o.worker || ownsShard(shardId, o.worker),
      publishEveryMs: options.publishEveryMs,
      stop,
    }).run();
  }
}

/** Options for {@linkcode StreamSnapshotter.follow}. */
export interface StreamFollowOptions {
  /** Publish each shard's point this often (ms) when records were applied. */
  publishEveryMs: number;
  /** Stops following: each shard publishes what it applied since its last point. */
  stop?: AbortSignal;
  /** @deprecated Use `stop`: this signal stops following gracefully, as `stop` does. */
  signal?: AbortSignal;
}

/** One run over a stream's shards: which are this worker's, which are ready, which wait. */
class StreamRun {
  #o: StreamSnapshotterOptions;
  #log: Logger;
  #known: Map<string, StreamShard>;
  #wanted: StreamShard[];
  #mine: StreamShard[] = [];
  #finals = new Map<string, Snapshot>();
  #outcomes = new Map<string, ShardOutcome>();
  /** Shards that will not be final in this run: failed, or waiting for their parents. */
  #stuck = new Set<string>();

  constructor(options: StreamSnapshotterOptions, shards: StreamShard[], finals: Snapshot[]) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#known = new Map(shards.map((s) => [s.shardId, s]));
    for (const s of finals) this.#finals.set(s.shardId, s);
    this.#wanted = shards.filter((s) => !options.shardIds || options.shardIds.includes(s.shardId));
    for (const s of this.#wanted) {
      if (options.worker && !ownsShard(s.shardId, options.worker)) {
        this.#outcomes.set(s.shardId, { shardId: s.shardId, status: "other-worker" });
      } else this.#mine.push(s);
    }
  }

  /** Snapshots every shard of this worker's share, as many at once as allowed. */
  async run(): Promise<ShardOutcome[]> {
    const queue = [...this.#mine];
    const running = new Set<Promise<void>>();
    const concurrency = this.#o.concurrency ?? 4;
    while (queue.length > 0 || running.size > 0) {
      const started = this.#startReady(queue, running, concurrency);
      if (running.size > 0) await Promise.race(running);
      else if (!started && queue.length > 0) {
        // Parents in this run that ended open (not final): their children must wait.
        for (const shard of queue.splice(0)) this.#wait(shard);
      }
    }
    return this.#wanted.map((s) => this.#outcomes.get(s.shardId)!);
  }

  /** Starts the queued shards whose parents are final; drops those that cannot be. */
  #startReady(queue: StreamShard[], running: Set<Promise<void>>, concurrency: number): boolean {
    let started = false;
    for (let i = 0; i < queue.length && running.size < concurrency;) {
      const shard = queue[i];
      if (shard.parentShards.some((p) => this.#blocked(p))) {
        // Its parents will not be final in this run: the next run takes it.
        queue.splice(i, 1);
        this.#wait(shard);
        started = true;
      } else if (!this.#ready(shard)) {
        i++;
      } else {
        queue.splice(i, 1);
        const task: Promise<void> = this.#runShard(shard).finally(() => running.delete(task));
        running.add(task);
        started = true;
      }
    }
    return started;
  }

  /** A parent that will not be final in this run: stuck, or another worker's and not final. */
  #blocked(parent: string): boolean {
    return this.#stuck.has(parent) ||
      (this.#known.has(parent) && !this.#finals.has(parent) &&
        !this.#mine.some((m) => m.shardId === parent));
  }

  #ready(shard: StreamShard): boolean {
    return shard.parentShards.every((p) => !this.#known.has(p) || this.#finals.has(p));
  }

  #wait(shard: StreamShard): void {
    this.#stuck.add(shard.shardId);
    this.#outcomes.set(shard.shardId, { shardId: shard.shardId, status: "waiting" });
    this.#log.info("child shard waits for its parents' final snapshots", {
      shard: shard.shardId,
      parents: shard.parentShards.join(","),
    });
  }

  async #runShard(shard: StreamShard): Promise<void> {
    const parents = shard.parentShards.map((p) => this.#finals.get(p))
      .filter((p): p is Snapshot => Boolean(p));
    try {
      const snapshot = await new ShardSnapshotter({
        ...this.#o,
        shardId: shard.shardId,
        hashKeyRange: shard.hashKeyRange,
        parents,
      }).snapshotShard();
      if (snapshot.final) this.#finals.set(shard.shardId, snapshot);
      this.#outcomes.set(shard.shardId, { shardId: shard.shardId, status: "done", snapshot });
    } catch (error) {
      this.#stuck.add(shard.shardId);
      this.#outcomes.set(shard.shardId, { shardId: shard.shardId, status: "failed", error });
    }
  }
}
