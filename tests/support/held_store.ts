/**
 * A store whose uploads wait: {@linkcode HeldStore} passes every call through to another store,
 * except that `put` waits until `release()`. A test uses it to line racing producers up at the
 * moment they publish (each has read its records and built its point), then lets them publish
 * in the order it chooses.
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

/** A store whose `put` calls wait until released. */
export class HeldStore implements SnapshotStore {
  readonly url: string;
  /** Resolves with the key of the first `put` once it is waiting. */
  readonly reached: Promise<string>;
  #inner: SnapshotStore;
  #reach!: (key: string) => void;
  #release!: () => void;
  #released: Promise<void>;

  constructor(inner: SnapshotStore) {
    this.#inner = inner;
    this.url = inner.url;
    this.reached = new Promise((resolve) => (this.#reach = resolve));
    this.#released = new Promise((resolve) => (this.#release = resolve));
  }

  /** Lets every waiting and later `put` through. */
  release(): void {
    this.#release();
  }

  list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    return this.#inner.list(prefix, options);
  }

  async put(key: string, file: string, options: PutOptions): Promise<void> {
    this.#reach(key);
    await this.#released;
    await this.#inner.put(key, file, options);
  }

  download(key: string, file: string, options?: DownloadOptions): Promise<DownloadResult> {
    return this.#inner.download(key, file, options);
  }

  delete(keys: string[], options?: DeleteOptions): Promise<void> {
    return this.#inner.delete(keys, options);
  }
}
