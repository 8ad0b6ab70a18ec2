/**
 * A store that lets a test act between a consumer's listing and its download:
 * {@linkcode RacingStore} passes every call through to another store, except that the first
 * `download` of a key the test picks first runs the test's work (a producer publishing, its
 * retention deleting the very object about to be fetched) and only then goes on. The race a
 * loaded machine only sometimes produces, every time.
 *
 * ```ts ignore
 * import { RacingStore } from "./racing_store.ts";
 *
 * const store = new RacingStore(inner);
 * store.beforeDownload((key) => key.endsWith(".delta.zst"), async () => {
 *   await publishTwice(); // retention deletes the delta the consumer planned
 * });
 * ```
 *
 * @module
 */
import type {
  DeleteOptions,
  DownloadOptions,
  DownloadResult,
  ListOptions,
  PutOptions,
  SnapshotStore,
  StoredObject,
} from "../../mod.ts";

/** A store that runs a test's work once, before the first download of a chosen key. */
export class RacingStore implements SnapshotStore {
  readonly url: string;
  /** Every key downloaded (or tried), in order. */
  readonly downloads: string[] = [];
  #inner: SnapshotStore;
  #pick?: (key: string) => boolean;
  #work?: () => Promise<void>;
  #done?: { resolve: () => void; reject: (error: unknown) => void };

  constructor(inner: SnapshotStore) {
    this.#inner = inner;
    this.url = inner.url;
  }

  /**
   * Arms the race: the first download of a key `pick` accepts waits for `work` first.
   *
   * @returns Resolves once `work` has run (rejects if it failed).
   */
  beforeDownload(pick: (key: string) => boolean, work: () => Promise<void>): Promise<void> {
    this.#pick = pick;
    this.#work = work;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#done = { resolve, reject };
    return promise;
  }

  list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    return this.#inner.list(prefix, options);
  }

  put(key: string, file: string, options: PutOptions): Promise<void> {
    return this.#inner.put(key, file, options);
  }

  async download(key: string, file: string, options?: DownloadOptions): Promise<DownloadResult> {
    this.downloads.push(key);
    const work = this.#work;
    if (work && this.#pick?.(key)) {
      this.#work = undefined;
      try {
        await work();
        this.#done!.resolve();
      } catch (error) {
        this.#done!.reject(error);
        throw error;
      }
    }
    return await this.#inner.download(key, file, options);
  }

  delete(keys: string[], options?: DeleteOptions): Promise<void> {
    return this.#inner.delete(keys, options);
  }
}
