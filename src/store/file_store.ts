/**
 * A {@linkcode SnapshotStore} in a local directory. Writes are atomic: the bytes go to a temp
 * file beside the target, are fsynced, then linked into place, which refuses to replace an
 * existing key. Metadata lives in a `<key>.meta.json` sidecar, linked after the data: a key is
 * published (listed, downloadable) once its sidecar exists.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InvalidArgumentError } from "../errors.ts";
import {
  type DeleteOptions,
  type DownloadOptions,
  type DownloadResult,
  type HeadOptions,
  type HeadResult,
  type ListOptions,
  ObjectExistsError,
  type PutOptions,
  type SnapshotStore,
  type StoredObject,
} from "./snapshot_store.ts";

const META_SUFFIX = ".meta.json";

/** Options for {@linkcode FileSnapshotStore}. */
export interface FileSnapshotStoreOptions {
  /** The directory that holds the snapshots; created on first write. */
  root: string;
}

/**
 * Keeps snapshots as files under a local directory.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileSnapshotStore } from "./file_store.ts";
 * const store = new FileSnapshotStore({ root: "./snapshots" }); // created on first write
 * assert.match(store.url, /^file:\/\/.*\/snapshots$/);
 * ```
 */
export class FileSnapshotStore implements SnapshotStore {
  /** The absolute root directory. */
  readonly root: string;
  /** A `file://` URL naming the root. */
  readonly url: string;

  /**
   * Creates a store rooted at a directory.
   *
   * @param options The root directory.
   */
  constructor(options: FileSnapshotStoreOptions) {
    if (!options.root) {
      throw new InvalidArgumentError(
        `Cannot create file store as the root is empty: current value is ${
          JSON.stringify(options.root)
        }`,
      );
    }
    this.root = resolve(options.root);
    this.url = pathToFileURL(this.root).href;
  }

  #path(key: string): string {
    const segments = key.split("/");
    for (const segment of segments) {
      if (
        segment === "" || segment === "." || segment === ".." ||
        segment.startsWith(".") ||
        segment.includes("\\") || segment.includes("\0")
      ) {
        throw new InvalidArgumentError(
          `Cannot use key in file store as it is not a plain relative path: current value is ${
            JSON.stringify(key)
          }`,
        );
      }
    }
    return join(this.root, ...segments);
  }

  /**
   * Lists every stored object whose key starts with `prefix`.
   *
   * @param prefix The key prefix.
   * @param options Aborts the listing.
   * @returns The objects.
   */
  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    yield* this.#walk(this.root, "", prefix, options?.signal);
  }

  async *#walk(
    dir: string,
    keyPrefix: string,
    prefix: string,
    signal?: AbortSignal,
  ): AsyncIterable<StoredObject> {
    signal?.throwIfAborted();
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue; // temp files and hidden entries
      const key = keyPrefix + entry.name;
      if (entry.isDirectory) {
        const sub = key + "/";
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) {
          yield* this.#walk(join(dir, entry.name), sub, prefix, signal);
        }
      } else if (
        entry.isFile && !entry.name.endsWith(META_SUFFIX) &&
        key.startsWith(prefix)
      ) {
        // Published once its sidecar exists.
        if (!await exists(join(dir, entry.name + META_SUFFIX))) continue;
        const info = await Deno.stat(join(dir, entry.name)).catch(() => undefined);
        if (info) {
          yield { key, size: info.size, lastModified: info.mtime ?? undefined };
        }
      }
    }
  }

  /**
   * Publishes a file atomically under a key.
   *
   * @param key The key.
   * @param file The file to publish.
   * @param options Metadata; `ifNoneMatch` (default true) refuses to replace the key.
   */
  async put(key: string, file: string, options: PutOptions): Promise<void> {
    const target = this.#path(key);
    const metaFile = target + META_SUFFIX;
    const replace = options.ifNoneMatch === false;
    await Deno.mkdir(dirname(target), { recursive: true });
    // 1. The data claims the key (no-replace link). Data with no sidecar is either a writer
    //    between its two links (microseconds) or a crash's leftover: wait, then take it over.
    const writeData = (overwrite: boolean) =>
      writeAtomically(target, async (tmp) => {
        await Deno.copyFile(file, tmp);
        options.signal?.throwIfAborted();
      }, overwrite);
    try {
      await writeData(replace);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      if (!await this.#isOrphan(target, metaFile)) throw new ObjectExistsError(key);
      await writeData(true);
    }
    // 2. The sidecar publishes it (no-replace link): a writer that lost a race fails here,
    //    so data and metadata always belong together.
    try {
      await writeAtomically(metaFile, async (tmp) => {
        await Deno.writeTextFile(tmp, JSON.stringify(options.metadata));
      }, replace);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw new ObjectExistsError(key);
      throw error;
    }
    await syncDirectory(dirname(target));
    const { size } = await Deno.stat(target);
    options.onProgress?.(size);
  }

  async #isOrphan(target: string, metaFile: string): Promise<boolean> {
    const deadline = Date.now() + ORPHAN_WAIT_MS;
    while (Date.now() < deadline) {
      if (await exists(metaFile)) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return await exists(target) && !await exists(metaFile);
  }

  /**
   * Copies a stored object to a local file.
   *
   * @param key The key.
   * @param file The local file to write.
   * @param options Aborts the download.
   * @returns The metadata and size.
   */
  async download(key: string, file: string, options?: DownloadOptions): Promise<DownloadResult> {
    options?.signal?.throwIfAborted();
    const source = this.#path(key);
    let metadata: Record<string, string> = {};
    try {
      metadata = JSON.parse(await Deno.readTextFile(source + META_SUFFIX));
    } catch (error) {
      // No sidecar: not published, or being deleted (the sidecar goes first). No object then.
      if (error instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(
          `Cannot download object as it is not published: current value is "${key}"`,
        );
      }
      if (!(error instanceof SyntaxError)) throw error;
    }
    await Deno.copyFile(source, file);
    options?.signal?.throwIfAborted();
    const { size } = await Deno.stat(file);
    return { metadata, size };
  }

  /**
   * Reads an object's size and modification time (the data file's) and its metadata (the
   * sidecar's), without reading the data.
   *
   * @param key The key.
   * @param options Aborts the call.
   * @returns The size, metadata and modification time, or `undefined` when the key is not
   * published (no data file, or no sidecar yet).
   */
  async head(key: string, options?: HeadOptions): Promise<HeadResult | undefined> {
    options?.signal?.throwIfAborted();
    const path = this.#path(key);
    let text: string;
    let info: Deno.FileInfo;
    try {
      text = await Deno.readTextFile(path + META_SUFFIX);
      info = await Deno.stat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    let metadata: Record<string, string> = {};
    try {
      metadata = JSON.parse(text);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
    return { size: info.size, metadata, lastModified: info.mtime ?? undefined };
  }

  /**
   * Deletes objects (and their metadata); missing keys are ignored.
   *
   * @param keys The keys to delete.
   * @param options Aborts the deletion between keys.
   */
  async delete(keys: string[], options?: DeleteOptions): Promise<void> {
    for (const key of keys) {
      options?.signal?.throwIfAborted();
      const path = this.#path(key);
      for (const p of [path + META_SUFFIX, path]) {
        await Deno.remove(p).catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
      }
    }
  }
}

const ORPHAN_WAIT_MS = 2_000;

async function syncDirectory(dir: string): Promise<void> {
  // Makes the new directory entries durable where the platform allows opening a directory.
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Not supported on every platform; the rename itself is still atomic.
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Writes `target` through a hidden temp file beside it: write, fsync, then link (no replace)
 * or rename (replace). The temp file is removed whatever happens.
 */
async function writeAtomically(
  target: string,
  write: (tmp: string) => Promise<void>,
  replace: boolean,
): Promise<void> {
  const tmp = join(
    dirname(target),
    `.${target.slice(dirname(target).length + 1)}.tmp-${crypto.randomUUID()}`,
  );
  try {
    await write(tmp);
    const handle = await Deno.open(tmp, { read: true, write: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
    if (replace) await Deno.rename(tmp, target);
    else await Deno.link(tmp, target);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}
