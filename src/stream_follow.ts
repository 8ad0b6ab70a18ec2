/**
 * Following a whole stream: one {@linkcode ShardSnapshotter.follow} per shard of this worker's
 * share, started once its parents' final snapshots exist, with the stream's shards listed
 * again every interval so that children of a reshard are picked up.
 *
 * @module
 */
import { sleep } from "./kinesis/retry.ts";
import { listShardSnapshots } from "./_fetch.ts";
import { listingMayRecover, listStreamShards, type StreamShard } from "./kinesis/list_shards.ts";
import { type Logger, silentLogger } from "./logger.ts";
import type { Snapshot } from "./snapshot_key.ts";
import { ShardSnapshotter, type ShardSnapshotterOptions } from "./shard_snapshotter.ts";

/** What the stream follower needs. */
export interface StreamFollowerOptions extends Omit<ShardSnapshotterOptions, "shardId"> {
  /** Only these shards. */
  shardIds?: string[];
  /** Whether this worker takes a shard. */
  owns: (shardId: string) => boolean;
  /** Publish a point this often (ms) when records were applied. */
  publishEveryMs: number;
  /** Stops following. */
  stop: AbortSignal;
}

/** A shard follower failed: the others were stopped (after publishing). */
export class FollowError extends Error {
  /** The shard that failed. */
  readonly shardId: string;

  /**
   * Creates the error.
   *
   * @param shardId The shard that failed.
   * @param cause Why.
   */
  constructor(shardId: string, cause: unknown) {
    super(
      `Cannot follow shard "${shardId}": ${(cause as Error)?.message ?? String(cause)}`,
      { cause },
    );
    this.name = "FollowError";
    this.shardId = shardId;
  }
}

/** Follows this worker's shards of a stream until stopped. */
export class StreamFollow {
  #o: StreamFollowerOptions;
  #log: Logger;
  #halt = new AbortController();
  #running = new Map<string, Promise<void>>();
  #finals = new Map<string, Snapshot>();
  #latest = new Map<string, Snapshot>();
  #failure?: FollowError;
  #listed = false;

  constructor(options: StreamFollowerOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
  }

  /**
   * Follows until stopped or a shard fails.
   *
   * @returns Every shard's latest point when it stopped.
   */
  async run(): Promise<Snapshot[]> {
    const stop = this.#o.stop;
    const halt = () => this.#halt.abort();
    stop.addEventListener("abort", halt, { once: true });
    if (stop.aborted) halt();
    try {
      while (!this.#halt.signal.aborted) {
        await this.#startReady().then(() => this.#listed = true, (error) => {
          // Stopping cancels a listing in flight; that is no failure to report.
          if (this.#halt.signal.aborted) return;
          // A first listing no retry can fix (no region or credentials, no such stream) ends it.
          if (!this.#listed && !listingMayRecover(error)) throw error;
          // Listing failed (after the SDK's and streambolt's retries): try again next interval.
          this.#log.warn("cannot list the stream's shards; trying again", {
            stream: this.#o.stream,
            error: (error as Error)?.message ?? String(error),
          });
        });
        await this.#nextRound();
      }
      await Promise.all(this.#running.values());
    } finally {
      stop.removeEventListener("abort", halt);
    }
    if (this.#failure) throw this.#failure;
    return [...this.#latest.values()];
  }

  /** Waits for the interval, a stop, or a shard's follower to end, whichever comes first. The
   * interval's timer is cancelled when it loses, so rounds leave no timers or listeners behind;
   * its rejection is handled as it is created (followers' tasks never reject). */
  async #nextRound(): Promise<void> {
    const round = new AbortController();
    const wait = sleep(this.#o.publishEveryMs, AbortSignal.any([this.#halt.signal, round.signal]))
      .catch((error) => {
        // Only the abort this round caused (a stop, or another waiter winning) is swallowed.
        if (!this.#halt.signal.aborted && !round.signal.aborted) throw error;
      });
    try {
      await Promise.race([wait, ...this.#running.values()]);
    } finally {
      round.abort();
    }
    await wait;
  }

  /** Starts a follower for each shard of this worker that is open (or not yet final) and whose
   * parents are final. */
  async #startReady(): Promise<void> {
    const o = this.#o;
    const shards = await listStreamShards(o.kinesis, o.stream, {
      signal: this.#halt.signal,
      retry: o.retry,
    });
    const known = new Set(shards.map((s) => s.shardId));
    const candidates = shards.filter((s) =>
      (!o.shardIds || o.shardIds.includes(s.shardId)) && o.owns(s.shardId) &&
      !this.#running.has(s.shardId) && !this.#finals.has(s.shardId)
    );
    if (candidates.length === 0) return;
    await this.#refreshFinals();
    for (const shard of candidates) {
      if (this.#finals.has(shard.shardId) || this.#halt.signal.aborted) continue;
      // A parent no longer listed (past the stream's retention) cannot be waited for.
      if (shard.parentShards.every((p) => this.#finals.has(p) || !known.has(p))) {
        this.#start(shard);
      }
    }
  }

  async #refreshFinals(): Promise<void> {
    const o = this.#o;
    const stored = await listShardSnapshots(o.store, o.stream, undefined, o.localPath);
    for (const s of stored) if (s.final) this.#finals.set(s.shardId, s);
  }

  #start(shard: StreamShard): void {
    const o = this.#o;
    const parents = shard.parentShards.map((p) => this.#finals.get(p))
      .filter((p): p is Snapshot => Boolean(p));
    this.#log.info("following shard", { stream: o.stream, shard: shard.shardId });
    const task = new ShardSnapshotter({
      ...o,
      shardId: shard.shardId,
      hashKeyRange: shard.hashKeyRange,
      parents,
    }).follow({ publishEveryMs: o.publishEveryMs, stop: this.#halt.signal })
      .then((latest) => {
        if (!latest) return;
        this.#latest.set(shard.shardId, latest);
        if (latest.final) this.#finals.set(shard.shardId, latest);
      })
      .catch((error) => {
        this.#failure ??= new FollowError(shard.shardId, error);
        this.#halt.abort();
      })
      .finally(() => this.#running.delete(shard.shardId));
    this.#running.set(shard.shardId, task);
  }
}
