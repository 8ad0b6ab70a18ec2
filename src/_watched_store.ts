/**
 * A consumer's view of a store: {@linkcode WatchedStore} passes every call through, reports a
 * download of an object deleted since it was listed (a producer's retention, `gc`) as a
 * {@linkcode SnapshotVanishedError}, and remembers which errors the store's calls threw, so
 * that a caller can tell a failed call to the store (worth trying again) from a failure of the
 * work around it (a refused object, a local database).
 *
 * @module
 */
import { SnapshotVanishedError } from "./errors.ts";
import type {
  DeleteOptions,
  DownloadOptions,
  DownloadResult,
  ListOptions,
  PutOptions,
  SnapshotStore,
  StoredObject,
} from "./store/snapshot_store.ts";

/**
 * Whether a store's error says the object does not exist: a file store's `NotFound`, S3's
 * `NoSuchKey` (or any 404).
 */
export function isMissingObject(error: unknown): boolean {
  if (error instanceof Deno.errors.NotFound) return true;
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

/** A store whose missing objects are named as such and whose failures are remembered. */
export class WatchedStore implements SnapshotStore {
  readonly url: string;
  #inner: SnapshotStore;
  #threw = new WeakSet<object>();

  constructor(inner: SnapshotStore) {
    this.#inner = inner;
    this.url = inner.url;
  }

  /**
   * `store` watched: itself when it already is.
   *
   * @param store The store.
   * @returns A watched store.
   */
  static of(store: SnapshotStore): WatchedStore {
    return store instanceof WatchedStore ? store : new WatchedStore(store);
  }

  /**
   * Whether `error` was thrown by a call to the store.
   *
   * @param error The error.
   * @returns True for an error a store call threw (or the vanished object it named).
   */
  threw(error: unknown): boolean {
    return typeof error === "object" && error !== null && this.#threw.has(error);
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    try {
      yield* this.#inner.list(prefix, options);
    } catch (error) {
      throw this.#remember(error);
    }
  }

  async download(key: string, file: string, options?: DownloadOptions): Promise<DownloadResult> {
    try {
      return await this.#inner.download(key, file, options);
    } catch (error) {
      if (!isMissingObject(error)) throw this.#remember(error);
      throw this.#remember(new SnapshotVanishedError(key, 1, { cause: error }));
    }
  }

  async put(key: string, file: string, options: PutOptions): Promise<void> {
    try {
      await this.#inner.put(key, file, options);
    } catch (error) {
      throw this.#remember(error);
    }
  }

  async delete(keys: string[], options?: DeleteOptions): Promise<void> {
    try {
      await this.#inner.delete(keys, options);
    } catch (error) {
      throw this.#remember(error);
    }
  }

  #remember(error: unknown): unknown {
    if (typeof error === "object" && error !== null) this.#threw.add(error);
    return error;
  }
}
