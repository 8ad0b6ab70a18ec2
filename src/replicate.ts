/**
 * {@linkcode Replicator}: the library behind `streambolt replicate`, a sidecar that keeps one
 * plain SQLite file per shard current for readers in any language, under `DIR/<stream>/`
 * (see {@linkcode ReplicaDir}). It follows the store by default (each new delta applied as it
 * appears; a full snapshot only when no delta leads on) or, with `follow: "kinesis"`, the
 * shards themselves through a generator. Without `shardIds` it follows every open shard of the
 * stream (ListShards every interval), keeps a closed shard's file until its children hold a
 * point, and lists in `shards.json` which file holds which hash keys.
 *
 * @module
 */
import { join } from "node:path";
import type { KinesisClientLike } from "./aws_client.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { SnapshotGenerator } from "./generator.ts";
import type { HashKeyRange } from "./kinesis/hash_key.ts";
import { listingMayRecover, listStreamShards } from "./kinesis/list_shards.ts";
import { type RetryOptions, sleep } from "./kinesis/retry.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { ReplicaDir } from "./replica_dir.ts";
import { ReplicaFile } from "./replica_file.ts";
import { followShardFromKinesis, followShardFromStore } from "./_replica_shard.ts";
import { assertName } from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";
import { ownsShard, type WorkerShare } from "./stream_snapshotter.ts";
import { recordReplicaLag } from "./_telemetry.ts";

/** Options for {@linkcode Replicator}. */
export interface ReplicatorOptions {
  /** Where the points are published. */
  store: SnapshotStore;
  /** The stream name. */
  stream: string;
  /** The directory: files go to `<outDir>/<stream>/`. */
  outDir: string;
  /** Only these shards (no ListShards call when following the store). Default: every open
   * shard of the stream, which needs `kinesis` for ListShards. */
  shardIds?: string[];
  /** `"store"` (default): apply the points the producer publishes. `"kinesis"`: read the
   * shards and apply their records through `generator`. */
  follow?: "store" | "kinesis";
  /** The Kinesis client: ListShards for the whole stream; GetRecords when following Kinesis. */
  kinesis?: KinesisClientLike;
  /** Turns records into rows; needed to follow Kinesis. */
  generator?: SnapshotGenerator;
  /** How often to look for new points (or, following Kinesis, to read after an empty page),
   * in ms, at least 200. Defaults to 5,000 for the store and 1,000 for Kinesis. */
  pollIntervalMs?: number;
  /** Take only this worker's stable share of the shards. */
  worker?: WorkerShare;
  /** A file created once every followed shard holds a point (a readiness probe). */
  readyFile?: string;
  /** Retries of throttled and failed Kinesis calls. */
  retry?: Partial<RetryOptions>;
  /** Where progress is logged. */
  logger?: Logger;
}

/** A followed shard's state in `status.json`. */
export type ReplicaShardState = "waiting" | "following" | "final" | "retired" | "failing";

/** A shard's entry in `status.json`. */
export interface ReplicaShardStatus {
  /** The shard. */
  shardId: string;
  /** Its file, relative to the stream's directory. */
  file: string;
  /** `waiting` (no point yet), `following`, `final` (closed shard, all applied), `retired`
   * (no longer followed: removed once its children hold points, else kept), `failing` (the last attempt failed). */
  state: ReplicaShardState;
  /** The point the file holds. */
  sequenceNumber?: string;
  /** When the point's last record arrived in the stream (ISO 8601). */
  lastArrivalAt?: string;
  /** How old the point is: now minus `lastArrivalAt`, in ms. */
  ageMs?: number;
  /** When the file last reached a new point (ISO 8601). */
  appliedAt?: string;
  /** Why the last attempt failed. */
  error?: string;
}

/** A shard's entry in `shards.json`: the file that holds its hash key range. */
export interface RoutedShard {
  /** The shard. */
  shardId: string;
  /** Its file, relative to the stream's directory. */
  file: string;
  /** The first hash key of its range (decimal), when known. */
  startingHashKey?: string;
  /** The last hash key of its range (decimal), when known. */
  endingHashKey?: string;
  /** The point the file held when `shards.json` was written. */
  sequenceNumber: string;
}

/** A shard as the replicator sees the stream. */
interface Topology {
  shardId: string;
  parentShards: string[];
  hashKeyRange?: HashKeyRange;
  closed: boolean;
}

/** A shard being followed. */
export interface FollowedShard {
  /** Where it sits in the stream. */
  shard: Topology;
  /** Its replica file. */
  file: ReplicaFile;
  /** Its state. */
  state: ReplicaShardState;
  /** When it last reached a new point. */
  appliedAt?: string;
  /** Why its last attempt failed. */
  error?: string;
  /** Following Kinesis: the running reader. */
  task?: Promise<void>;
}

/**
 * Keeps one SQLite file per shard current under `<outDir>/<stream>/`.
 *
 * @example Usage
 * ```ts ignore
 * import { FileSnapshotStore, Replicator } from "../mod.ts";
 * const stop = new AbortController();
 * Deno.addSignalListener("SIGTERM", () => stop.abort());
 * await new Replicator({
 *   store: new FileSnapshotStore({ root: "./snapshots" }),
 *   stream: "orders",
 *   shardIds: ["shardId-000000000000"],
 *   outDir: "./replica",
 * }).run(stop.signal);
 * ```
 */
export class Replicator {
  #o: ReplicatorOptions & { pollIntervalMs: number; follow: "store" | "kinesis" };
  #log: Logger;
  #dir?: ReplicaDir;
  #shards = new Map<string, FollowedShard>();
  #ready = false;
  #listed = false;

  /**
   * Checks the options; nothing happens until {@linkcode Replicator.run}.
   *
   * @param options The store, the stream, the directory and the settings.
   */
  constructor(options: ReplicatorOptions) {
    assertName("stream", options.stream);
    for (const id of options.shardIds ?? []) assertName("shard", id);
    const follow = options.follow ?? "store";
    const poll = options.pollIntervalMs ?? (follow === "store" ? 5_000 : 1_000);
    if (!Number.isFinite(poll) || poll < 200) {
      throw new InvalidArgumentError(
        `Cannot poll more than 5 times a second: current value is ${poll} ms`,
      );
    }
    const needsKinesis = follow === "kinesis" || !options.shardIds?.length;
    const missing = needsKinesis && !options.kinesis
      ? "kinesis"
      : follow === "kinesis" && !options.generator
      ? "generator"
      : undefined;
    if (missing) {
      throw new InvalidArgumentError(
        `Cannot replicate ${
          follow === "kinesis" ? "from Kinesis" : "the whole stream"
        } without the ${missing} option: current value is undefined`,
      );
    }
    this.#o = { ...options, pollIntervalMs: poll, follow };
    this.#log = options.logger ?? silentLogger;
  }

  /**
   * Each followed shard's state, as `status.json` shows it.
   *
   * @returns The shards, by id.
   */
  status(): ReplicaShardStatus[] {
    const now = Date.now();
    return [...this.#shards.values()].map((f) => {
      const meta = f.file.metadata;
      const arrived = meta?.lastArrivalAt ? Date.parse(meta.lastArrivalAt) : undefined;
      return {
        shardId: f.shard.shardId,
        file: `${f.shard.shardId}.sqlite`,
        state: f.state,
        sequenceNumber: meta?.sequenceNumber,
        lastArrivalAt: meta?.lastArrivalAt,
        ageMs: arrived === undefined ? undefined : Math.max(0, now - arrived),
        appliedAt: f.appliedAt,
        error: f.error,
      };
    }).sort((a, b) => a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : 0);
  }

  /**
   * Checks the directory and the files it holds, then follows until `signal` aborts; every
   * file is then at a whole point, checkpointed and closed.
   *
   * @param signal Stops following.
   * @throws {ReplicaDirError} When the directory belongs to another stream or store, another
   * process is replicating into it, or it is not writable.
   * @throws {ReplicaFileError} When a file in it fails `integrity_check` or holds another shard.
   */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    this.#dir = await ReplicaDir.open(o.outDir, { stream: o.stream, store: o.store.url });
    if (o.readyFile) await Deno.remove(o.readyFile).catch(() => {});
    let resumed = false;
    try {
      await this.#resume();
      resumed = true;
      while (!signal.aborted) {
        await this.#tick(signal);
        await sleep(o.pollIntervalMs, signal).catch(() => {});
      }
      await Promise.all([...this.#shards.values()].map((f) => f.task));
    } finally {
      for (const f of this.#shards.values()) f.file?.close();
      // After a refused start nothing is written: the directory stays as it was found.
      if (resumed) await this.#dir.writeJson("status.json", this.#statusJson()).catch(() => {});
      this.#dir.close();
    }
  }

  /** Opens (and so checks) every file the directory holds, before anything is written. */
  async #resume(): Promise<void> {
    const dir = this.#dir!;
    for (const shardId of await dir.shardFiles()) {
      const file = await ReplicaFile.open(dir.fileOf(shardId), { stream: this.#o.stream, shardId });
      this.#shards.set(shardId, {
        shard: { shardId, parentShards: [], closed: false },
        file,
        state: file.metadata?.final ? "final" : "following",
      });
      this.#log.info("resuming replica file", {
        shard: shardId,
        sequenceNumber: file.metadata?.sequenceNumber,
      });
    }
  }

  /** One round: the stream's shards, a step for each followed one, then the JSON files. */
  async #tick(signal: AbortSignal): Promise<void> {
    let topology: Topology[];
    try {
      topology = await this.#topology(signal);
      this.#listed = true;
    } catch (error) {
      if (signal.aborted) return;
      // A first listing that no retry can fix (no region or credentials, no such stream, access
      // denied) ends the run: waiting an interval changes nothing.
      if (!this.#listed && !listingMayRecover(error)) throw error;
      this.#log.warn("cannot list the stream's shards; trying again", {
        error: (error as Error)?.message ?? String(error),
      });
      return;
    }
    const followed = this.#select(topology);
    await Promise.all(followed.map((f) => this.#step(f, signal)));
    await this.#publish(topology);
  }

  /** The shards of this replicator: the given ones, or this worker's share of the stream. */
  async #topology(signal: AbortSignal): Promise<Topology[]> {
    const o = this.#o;
    if (o.shardIds?.length && o.follow === "store") {
      return o.shardIds.map((shardId) => ({ shardId, parentShards: [], closed: false }));
    }
    const shards = await listStreamShards(o.kinesis!, o.stream, { signal, retry: o.retry });
    return shards.filter((s) =>
      (!o.shardIds?.length || o.shardIds.includes(s.shardId)) &&
      (!o.worker || ownsShard(s.shardId, o.worker))
    );
  }

  /**
   * The shards to follow now: every open one, and a closed one whose file is held (until its
   * children hold points) or that an open child still waits on.
   */
  #select(topology: Topology[]): FollowedShard[] {
    const byId = new Map(topology.map((s) => [s.shardId, s]));
    const holds = (id: string) => this.#shards.get(id)?.file.metadata !== undefined;
    const waitedOn = new Set(
      topology.filter((s) => !s.closed && !holds(s.shardId)).flatMap((s) => s.parentShards),
    );
    const chosen: FollowedShard[] = [];
    for (const shard of topology) {
      const known = this.#shards.get(shard.shardId);
      if (known?.state === "retired") continue;
      if (shard.closed && !holds(shard.shardId) && !waitedOn.has(shard.shardId)) continue;
      const f = known ?? this.#add(shard);
      f.shard = { ...shard, hashKeyRange: shard.hashKeyRange ?? f.shard.hashKeyRange };
      chosen.push(f);
    }
    // A file of a shard no longer listed (past retention, or not this worker's): kept as is.
    for (const f of this.#shards.values()) if (!byId.has(f.shard.shardId)) f.state = "retired";
    return chosen;
  }

  #add(shard: Topology): FollowedShard {
    const f: FollowedShard = {
      shard,
      file: undefined as unknown as ReplicaFile,
      state: "waiting",
    };
    this.#shards.set(shard.shardId, f);
    return f;
  }

  /** Brings one shard forward (from the store), or starts its reader (from Kinesis). */
  async #step(f: FollowedShard, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    f.file ??= await ReplicaFile.open(this.#dir!.fileOf(f.shard.shardId), {
      stream: o.stream,
      shardId: f.shard.shardId,
    });
    if (f.file.metadata?.final) f.state = "final";
    if (f.state === "final") return;
    const context = { ...o, dir: this.#dir!, shards: this.#shards, logger: this.#log, signal };
    if (o.follow === "kinesis") {
      f.task ??= followShardFromKinesis(f, context).finally(() => f.task = undefined);
      return;
    }
    await followShardFromStore(f, context);
    const meta = f.file.metadata;
    if (meta?.lastArrivalAt) {
      const age = Math.max(0, Date.now() - Date.parse(meta.lastArrivalAt));
      recordReplicaLag({ stream: o.stream, shardId: f.shard.shardId }, o.follow, age);
    }
  }

  /** Writes `shards.json` (when the routing changed) and `status.json`, retires parents whose
   * children hold points, and creates the ready file once every shard holds a point. */
  async #publish(topology: Topology[]): Promise<void> {
    const dir = this.#dir!;
    const routes = this.#routing(topology);
    await dir.writeJson("shards.json", {
      format: 1,
      stream: this.#o.stream,
      updatedAt: new Date().toISOString(),
      shards: routes,
    });
    await this.#retire(topology, new Set(routes.map((r) => r.shardId)));
    await dir.writeJson("status.json", this.#statusJson());
    const active = [...this.#shards.values()].filter((f) => f.state !== "retired");
    if (!this.#ready && active.length > 0 && active.every((f) => f.file?.metadata)) {
      if (this.#o.readyFile) await Deno.writeTextFile(this.#o.readyFile, "ready\n");
      this.#ready = true;
      this.#log.info("every shard holds a point", { shards: active.length });
    }
  }

  /**
   * The routing: each shard that holds a point, except a child whose parent is still listed
   * (a closed parent is listed until all its children hold points), so that every hash key
   * routes to exactly one file.
   */
  #routing(topology: Topology[]): RoutedShard[] {
    const holds = (id: string) => this.#shards.get(id)?.file?.metadata !== undefined;
    const children = (id: string) => topology.filter((s) => s.parentShards.includes(id));
    const listed = new Set<string>();
    for (const s of topology) {
      if (!holds(s.shardId)) continue;
      if (s.closed && children(s.shardId).every((c) => holds(c.shardId))) continue;
      if (s.parentShards.some((p) => listed.has(p))) continue;
      listed.add(s.shardId);
    }
    return topology.filter((s) => listed.has(s.shardId)).map((s) => ({
      shardId: s.shardId,
      file: `${s.shardId}.sqlite`,
      startingHashKey: s.hashKeyRange?.startingHashKey,
      endingHashKey: s.hashKeyRange?.endingHashKey,
      sequenceNumber: this.#shards.get(s.shardId)!.file.metadata!.sequenceNumber,
    }));
  }

  /** Removes the file of each closed shard that is final and no longer routed to. */
  async #retire(topology: Topology[], routed: Set<string>): Promise<void> {
    for (const s of topology) {
      const f = this.#shards.get(s.shardId);
      if (!s.closed || !f?.file?.metadata?.final || routed.has(s.shardId) || f.task) continue;
      if (!topology.some((c) => c.parentShards.includes(s.shardId))) continue;
      await f.file.remove();
      f.state = "retired";
      this.#log.info("retired the file of a closed shard: its children hold points", {
        shard: s.shardId,
      });
    }
  }

  #statusJson(): unknown {
    return {
      format: 1,
      stream: this.#o.stream,
      store: this.#o.store.url,
      updatedAt: new Date().toISOString(),
      ready: this.#ready,
      shards: this.status(),
    };
  }

  /** The directory the files are in (`<outDir>/<stream>`), once `run` has opened it. */
  get dir(): string {
    return this.#dir?.path ?? join(this.#o.outDir, this.#o.stream);
  }
}
