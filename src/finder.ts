/**
 * The consumer: {@linkcode ShardSnapshotFinder} finds the snapshots of one shard and downloads
 * one, verified, as a plain SQLite file ready to open.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { findLocalPoint, giveUpAfterVanished, type LocalPoint, restoreInto } from "./_restore.ts";
import { planRestore } from "./restore_plan.ts";
import { OtherPublicationError } from "./_delta.ts";
import { listShardSnapshots } from "./_fetch.ts";
import { InvalidArgumentError, SnapshotIntegrityError, SnapshotVanishedError } from "./errors.ts";
import { type Logger, silentLogger } from "./logger.ts";
import type { SnapshotMetadata } from "./metadata.ts";
import { assertName, localSnapshotFile, type Snapshot } from "./snapshot_key.ts";
import type { SnapshotStore } from "./store/snapshot_store.ts";

/** Options for {@linkcode ShardSnapshotFinder}. */
export interface ShardSnapshotFinderOptions {
  /** Where the snapshots are. */
  store: SnapshotStore;
  /** The stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** The local directory downloads go to (`<localPath>/<stream>/<shardId>/<seq>.sqlite`). */
  localPath: string;
  /** Where skipped keys and fallbacks are logged. */
  logger?: Logger;
}

/** Options for the finder's methods that only wait on the store. */
export interface FindOptions {
  /** Aborts the call. */
  signal?: AbortSignal;
}

/** Options for {@linkcode listSnapshots}. */
export interface ListSnapshotsOptions extends FindOptions {
  /** Only this shard's snapshots. */
  shardId?: string;
}

/**
 * Lists the snapshots of a stream (or of one shard) in a store, oldest first per shard, across
 * every page of the listing. Keys that are not snapshots are ignored.
 *
 * @param store The store.
 * @param stream The stream name.
 * @param options One shard only; aborts the listing.
 * @returns The snapshots, ordered by shard id and then oldest first. Their `localFile` is
 * empty: nothing is downloaded.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileSnapshotStore, listSnapshots } from "../mod.ts";
 * const store = new FileSnapshotStore({ root: await Deno.makeTempDir() });
 * assert.deepEqual(await listSnapshots(store, "orders"), []);
 * ```
 */
export async function listSnapshots(
  store: SnapshotStore,
  stream: string,
  options?: ListSnapshotsOptions,
): Promise<Snapshot[]> {
  assertName("stream", stream);
  if (options?.shardId !== undefined) assertName("shard", options.shardId);
  return await listShardSnapshots(store, stream, options?.shardId, "", options?.signal);
}

/** Options for {@linkcode ShardSnapshotFinder.downloadSnapshot}. */
export interface DownloadSnapshotOptions extends FindOptions {
  /** Start from the newest point of the shard already in the local directory (an earlier
   * download) when deltas lead on from it: only those deltas are fetched, and that file is
   * brought forward (it is moved to the new point's name). Defaults to false. */
  refresh?: boolean;
}

/** Options for {@linkcode ShardSnapshotFinder.downloadLatestSnapshot}. */
export interface DownloadLatestOptions extends DownloadSnapshotOptions {
  /** When the newest snapshot fails verification, try the next older one (each failure is
   * logged). Defaults to false: a corrupt newest snapshot is an error. */
  fallback?: boolean;
}

/**
 * Finds and downloads the snapshots of one shard.
 *
 * @example Usage
 * ```ts ignore
 * import { DatabaseSync } from "node:sqlite";
 * import { FileSnapshotStore, ShardSnapshotFinder } from "../mod.ts";
 * const finder = new ShardSnapshotFinder({
 *   store: new FileSnapshotStore({ root: "./snapshots" }),
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   localPath: "./local",
 * });
 * const latest = await finder.findLatestSnapshot();
 * if (latest) {
 *   await finder.downloadSnapshot(latest);
 *   const db = new DatabaseSync(latest.localFile, { readOnly: true });
 *   db.close();
 * }
 * ```
 */
export class ShardSnapshotFinder {
  /** The stream name. */
  readonly stream: string;
  /** The shard id. */
  readonly shardId: string;
  /** The absolute local directory. */
  readonly localPath: string;
  #store: SnapshotStore;
  #logger: Logger;

  /**
   * Creates a finder for one shard.
   *
   * @param options The store, the shard and the local directory.
   */
  constructor(options: ShardSnapshotFinderOptions) {
    this.stream = assertName("stream", options.stream);
    this.shardId = assertName("shard", options.shardId);
    if (!options.localPath) {
      throw new InvalidArgumentError(
        `Cannot find snapshots as the local path is empty: current value is ${
          JSON.stringify(options.localPath)
        }`,
      );
    }
    this.localPath = resolve(options.localPath);
    this.#store = options.store;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Lists every snapshot of the shard, oldest first (by sequence number, as integers), across
   * every page of the store's listing. Keys that are not snapshots of this shard are ignored.
   *
   * @param options Aborts the listing.
   * @returns The snapshots, each with the `localFile` a download would write.
   */
  async findSnapshots(options?: FindOptions): Promise<Snapshot[]> {
    return await listShardSnapshots(
      this.#store,
      this.stream,
      this.shardId,
      this.localPath,
      options?.signal,
    );
  }

  /**
   * Finds the newest point of the shard that can be restored: the newest object that a chain
   * reaches (a full snapshot, and the deltas after it with no gap).
   *
   * @param options Aborts the listing.
   * @returns Its newest object, or `undefined` when the shard has none.
   */
  async findLatestSnapshot(options?: FindOptions): Promise<Snapshot | undefined> {
    return planRestore(await this.findSnapshots(options))?.target;
  }

  /**
   * Downloads the point a snapshot stands for as plain SQLite, to
   * `<localPath>/<stream>/<shard>/<seq>.sqlite`, and sets the snapshot's `localFile` to that
   * path. A full snapshot is one object; a delta's point is restored from the cheapest chain
   * that reaches it (a full snapshot and the deltas after it, or, with `refresh`, the deltas
   * after a point already held in the local directory). Every object is verified (SHA-256
   * before it is decoded, contents against its key, each delta against the point it applies
   * to) and the file is renamed into place only when the point is whole; a bad object is
   * reported with a {@linkcode SnapshotIntegrityError} and never left where it could be opened.
   * An object of the chain deleted after the shard was listed (a producer's retention, `gc`)
   * makes it list again and re-plan, up to 5 listings in a row.
   *
   * @param snapshot A snapshot of this finder's shard.
   * @param options Refresh from a local point; aborts the download.
   * @returns The metadata recorded inside the restored database.
   * @throws {SnapshotVanishedError} When the point itself is deleted meanwhile, or listing again
   * 5 times in a row did not get past deletions.
   */
  async downloadSnapshot(
    snapshot: Snapshot,
    options?: DownloadSnapshotOptions,
  ): Promise<SnapshotMetadata> {
    if (snapshot.stream !== this.stream || snapshot.shardId !== this.shardId) {
      throw new InvalidArgumentError(
        `Cannot download snapshot as it belongs to another shard: current value is "${snapshot.key}"`,
      );
    }
    const objects = snapshot.kind === "full" && !options?.refresh
      ? [snapshot]
      : await this.findSnapshots(options);
    const restored = await this.#restorePoint(objects, snapshot, options);
    if (!restored) {
      throw new SnapshotIntegrityError(
        snapshot.key,
        `Cannot restore snapshot as no chain of verified objects reaches it: current value is "${snapshot.key}"`,
      );
    }
    snapshot.localFile = restored.snapshot.localFile;
    return restored.metadata;
  }

  /**
   * Finds and downloads the newest restorable point; with `fallback`, when an object of its
   * chain fails verification, the newest point that verifies. An object deleted after the
   * shard was listed (the producer's retention races every consumer) makes it list again and
   * re-plan: the newest point then, up to 5 listings in a row.
   *
   * @param options Fall back, refresh from a local point; aborts the download.
   * @returns The newest object of the point downloaded (its `localFile` is the database), or
   * `undefined` when the shard has no snapshot.
   * @throws {SnapshotVanishedError} When 5 listings in a row each planned an object found gone.
   */
  async downloadLatestSnapshot(
    options?: DownloadLatestOptions,
  ): Promise<Snapshot | undefined> {
    const objects = await this.findSnapshots(options);
    return (await this.#restorePoint(objects, undefined, options))?.snapshot;
  }

  async #restorePoint(
    objects: Snapshot[],
    target: Snapshot | undefined,
    options?: DownloadLatestOptions,
  ): Promise<{ snapshot: Snapshot; metadata: SnapshotMetadata } | undefined> {
    const exclude = new Set<string>();
    let firstError: SnapshotIntegrityError | undefined;
    let vanished: SnapshotVanishedError | undefined;
    let refresh = options?.refresh;
    for (let listings = 1;;) {
      const local = refresh ? await this.#localPoint() : undefined;
      const plan = planRestore(objects, { target, from: local?.sequenceNumber, exclude });
      if (!plan?.target) {
        // The point asked for was deleted meanwhile: say so, rather than that nothing reaches it.
        if (vanished && target && !firstError) throw vanished;
        if (firstError) throw firstError;
        return undefined;
      }
      this.#warnUnreachable(plan.unreachable);
      const file = localSnapshotFile(this.localPath, { ...plan.target, final: plan.final });
      try {
        const metadata = await restoreInto(this.#store, plan, file, {
          local,
          signal: options?.signal,
        });
        return { snapshot: { ...plan.target, localFile: file }, metadata };
      } catch (error) {
        if (local && error instanceof OtherPublicationError) {
          refresh = this.#localIsStale(local, error);
          continue;
        }
        if (error instanceof SnapshotVanishedError) {
          giveUpAfterVanished(error, listings++);
          vanished = error;
          objects = await this.#listAgain(error, options);
          continue;
        }
        if (!(error instanceof SnapshotIntegrityError) || !options?.fallback) throw error;
        firstError ??= error;
        exclude.add(error.key);
        this.#logger.warn("snapshot failed verification; trying the newest point that verifies", {
          key: error.key,
          error: error.message,
        });
      }
    }
  }

  /**
   * The local point is another publication of its point than the one the store's deltas lead
   * on from (the store lost it, and a producer published the point again with other contents):
   * building on it would hold a state no producer published. The point is taken from the store.
   *
   * @returns False: restore without the local point.
   */
  #localIsStale(local: LocalPoint, error: OtherPublicationError): false {
    this.#logger.warn(
      "the local point was published again with other contents; restoring from the store",
      { shard: this.shardId, point: local.sequenceNumber, key: error.key },
    );
    return false;
  }

  /** An object of the plan was deleted since the listing (retention, `gc`): list again. */
  async #listAgain(error: SnapshotVanishedError, options?: FindOptions): Promise<Snapshot[]> {
    this.#logger.warn("snapshot deleted since the shard was listed; listing again", {
      shard: this.shardId,
      key: error.key,
    });
    return await this.findSnapshots(options);
  }

  #localPoint(): Promise<LocalPoint | undefined> {
    const dir = dirname(localSnapshotFile(this.localPath, {
      stream: this.stream,
      shardId: this.shardId,
      sequenceNumber: "0",
      final: false,
    }));
    return findLocalPoint(dir, this.stream, this.shardId);
  }

  #warnUnreachable(unreachable: Snapshot[]): void {
    if (unreachable.length === 0) return;
    this.#logger.warn(
      "newer objects are not restorable (a gap in their chain); using the newest point that is",
      {
        shard: this.shardId,
        unreachable: unreachable.map((s) => s.key).join(","),
      },
    );
  }
}
