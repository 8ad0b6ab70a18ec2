/**
 * The consumer: {@linkcode ShardSnapshotFinder} finds the snapshots of one shard and downloads
 * one, verified, as a plain SQLite file ready to open.
 *
 * @module
 */
import { resolve } from "node:path";
import { fetchSnapshot, listShardSnapshots, newest } from "./_snapshot_io.ts";
import { InvalidArgumentError, SnapshotIntegrityError } from "./errors.ts";
import { type Logger, silentLogger } from "./logger.ts";
import type { SnapshotMetadata } from "./metadata.ts";
import { assertName, localSnapshotFile, type Snapshot } from "./snapshot.ts";
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

/** Options for {@linkcode ShardSnapshotFinder.downloadLatestSnapshot}. */
export interface DownloadLatestOptions extends FindOptions {
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
   * Finds the snapshot with the largest sequence number.
   *
   * @param options Aborts the listing.
   * @returns The latest snapshot, or `undefined` when there is none.
   */
  async findLatestSnapshot(options?: FindOptions): Promise<Snapshot | undefined> {
    return newest(await this.findSnapshots(options));
  }

  /**
   * Downloads a snapshot as plain SQLite to `<localPath>/<stream>/<shard>/<seq>.sqlite` and
   * sets the snapshot's `localFile` to that path (for a snapshot this finder found, it already
   * is). The stored bytes are checked against their SHA-256 before the file is renamed into
   * place; a bad snapshot is reported with a {@linkcode SnapshotIntegrityError} and never left
   * where it could be opened.
   *
   * @param snapshot A snapshot of this finder's shard.
   * @param options Aborts the download.
   * @returns The metadata recorded inside the snapshot.
   */
  async downloadSnapshot(
    snapshot: Snapshot,
    options?: FindOptions,
  ): Promise<SnapshotMetadata> {
    if (snapshot.stream !== this.stream || snapshot.shardId !== this.shardId) {
      throw new InvalidArgumentError(
        `Cannot download snapshot as it belongs to another shard: current value is "${snapshot.key}"`,
      );
    }
    const target = localSnapshotFile(this.localPath, snapshot);
    const metadata = await fetchSnapshot(this.#store, snapshot, target, options?.signal);
    snapshot.localFile = target;
    return metadata;
  }

  /**
   * Finds and downloads the latest snapshot; with `fallback`, an older one when the latest
   * fails verification.
   *
   * @param options Whether to fall back to older snapshots; aborts the download.
   * @returns The snapshot downloaded, or `undefined` when the shard has no snapshot.
   */
  async downloadLatestSnapshot(
    options?: DownloadLatestOptions,
  ): Promise<Snapshot | undefined> {
    const snapshots = await this.findSnapshots(options);
    let firstError: unknown;
    for (let i = snapshots.length - 1; i >= 0; i--) {
      try {
        await this.downloadSnapshot(snapshots[i], options);
        return snapshots[i];
      } catch (error) {
        if (!(error instanceof SnapshotIntegrityError) || !options?.fallback) {
          throw error;
        }
        firstError ??= error;
        this.#logger.warn(
          "snapshot failed verification; trying the previous one",
          {
            key: snapshots[i].key,
            error: error.message,
          },
        );
      }
    }
    if (firstError) throw firstError;
    return undefined;
  }
}
