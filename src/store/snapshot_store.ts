/**
 * The storage interface behind snapshots: list, upload a file, download to a file, delete, and
 * (optionally) read an object's size and metadata without its bytes.
 * {@linkcode S3SnapshotStore} and {@linkcode FileSnapshotStore} implement it, and one shared
 * test suite runs against both.
 *
 * @module
 */

/** One object found by {@linkcode SnapshotStore.list}. */
export interface StoredObject {
  /** The key, relative to the store's root (never starting with `/`). */
  key: string;
  /** Size in bytes. */
  size: number;
  /** When it was written. */
  lastModified?: Date;
}

/** Options for {@linkcode SnapshotStore.put}. */
export interface PutOptions {
  /** Small string metadata stored with the object (keys lower-case ASCII). */
  metadata: Record<string, string>;
  /** Refuse to replace an object that already exists under the key. Defaults to true. */
  ifNoneMatch?: boolean;
  /** Aborts the upload; nothing is published. */
  signal?: AbortSignal;
  /** Called with the number of bytes uploaded so far. */
  onProgress?: (bytes: number) => void;
}

/** What {@linkcode SnapshotStore.download} learned about the object. */
export interface DownloadResult {
  /** The metadata stored with the object. */
  metadata: Record<string, string>;
  /** Bytes written. */
  size: number;
}

/** Options for {@linkcode SnapshotStore.download}. */
export interface DownloadOptions {
  /** Aborts the download. */
  signal?: AbortSignal;
}

/** Options for {@linkcode SnapshotStore.list}. */
export interface ListOptions {
  /** Aborts the listing. */
  signal?: AbortSignal;
}

/** Options for {@linkcode SnapshotStore.head}. */
export interface HeadOptions {
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** What {@linkcode SnapshotStore.head} learned about an object, without reading its bytes. */
export interface HeadResult {
  /** Size in bytes. */
  size: number;
  /** The metadata stored with the object (as {@linkcode SnapshotStore.download} returns it). */
  metadata: Record<string, string>;
  /** When it was written, when the store reports it. */
  lastModified?: Date;
}

/** Options for {@linkcode SnapshotStore.delete}. */
export interface DeleteOptions {
  /** Aborts the deletion (keys already deleted stay deleted). */
  signal?: AbortSignal;
}

/** Where snapshots are kept. Keys are `/`-separated and relative to the store's root. */
export interface SnapshotStore {
  /** A URL that names the store, for logs and errors (never holds credentials). */
  readonly url: string;
  /**
   * Lists every object whose key starts with `prefix`, across all pages.
   *
   * @param prefix The key prefix.
   * @param options Aborts the listing.
   * @returns The objects, in no guaranteed order.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject>;
  /**
   * Publishes a local file under a key, whole or not at all.
   *
   * @param key The key.
   * @param file The local file to upload.
   * @param options Metadata and upload options.
   */
  put(key: string, file: string, options: PutOptions): Promise<void>;
  /**
   * Downloads an object's bytes to a local file (created or truncated).
   *
   * @param key The key.
   * @param file The local file to write.
   * @param options Download options.
   * @returns The object's metadata and size.
   */
  download(
    key: string,
    file: string,
    options?: DownloadOptions,
  ): Promise<DownloadResult>;
  /**
   * Deletes objects; keys that do not exist are ignored.
   *
   * @param keys The keys to delete.
   * @param options Aborts the deletion.
   */
  delete(keys: string[], options?: DeleteOptions): Promise<void>;
  /**
   * Reads an object's size, metadata and modification time without downloading it (S3:
   * HeadObject). Optional: a store without it still works everywhere; what only it can tell
   * (such as `streamStatus`'s records applied and last arrival) is then reported as unknown.
   *
   * @param key The key.
   * @param options Aborts the request.
   * @returns What the store knows of the object, or `undefined` when no object is published
   * under the key.
   */
  head?(key: string, options?: HeadOptions): Promise<HeadResult | undefined>;
}

/** Thrown by {@linkcode SnapshotStore.put} when `ifNoneMatch` is set and the key exists. */
export class ObjectExistsError extends Error {
  /** The key that already exists. */
  readonly key: string;

  /**
   * Creates the error.
   *
   * @param key The key that already exists.
   * @param options Standard error options, such as `cause`.
   */
  constructor(key: string, options?: ErrorOptions) {
    super(
      `Cannot publish snapshot as the key already exists: current value is "${key}"`,
      options,
    );
    this.name = "ObjectExistsError";
    this.key = key;
  }
}
