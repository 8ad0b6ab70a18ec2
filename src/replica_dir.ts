/**
 * The directory `streambolt replicate` keeps for one stream, `DIR/<stream>/`: one
 * `<shardId>.sqlite` per shard, `shards.json` (which file holds which hash keys),
 * `status.json` (each shard's point and age) and `replica.json` (the stream and store the
 * files came from, so a directory is never mixed with another's). JSON files are replaced
 * atomically (written beside, synced, renamed), so a reader never sees half of one.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { assertName } from "./snapshot_key.ts";

/** The directory cannot be used: another stream's or store's, or not writable. Nothing in it
 * was changed. */
export class ReplicaDirError extends Error {
  /** The directory. */
  readonly dir: string;

  /**
   * Creates the error.
   *
   * @param dir The directory.
   * @param message What is wrong with it.
   * @param options The underlying error, as `cause`.
   */
  constructor(dir: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ReplicaDirError";
    this.dir = dir;
  }
}

/** What `replica.json` records. */
export interface ReplicaIdentity {
  /** The layout's version. */
  format: number;
  /** The stream. */
  stream: string;
  /** The store URL the points come from. */
  store: string;
}

/** Leftovers of an interrupted run (scratch downloads, restores, JSON being written). */
const SCRATCH = /^\.(full|delta|restore|download|verify)-|\.tmp-[0-9a-f-]+$/;

/** A stream's replica directory, held by one process at a time. */
export class ReplicaDir {
  /** `DIR/<stream>`. */
  readonly path: string;
  #lock: Deno.FsFile;

  private constructor(path: string, lock: Deno.FsFile) {
    this.path = path;
    this.#lock = lock;
  }

  /** Lets go of the directory: another process may open it. */
  close(): void {
    this.#lock.close();
  }

  /**
   * Opens (creating it if needed) `<out>/<stream>` and checks it: writable, held by no other
   * process (an exclusive lock on its `.lock` file, which names the holder's pid, kept until
   * {@linkcode ReplicaDir.close} or the process ends), and when it holds `replica.json`, of the
   * same stream and store. Leftovers of an interrupted run are removed.
   *
   * @param out The `--out` directory.
   * @param identity The stream and store URL.
   * @returns The directory.
   * @throws {ReplicaDirError} When the directory cannot be used; nothing in it is changed.
   */
  static async open(out: string, identity: { stream: string; store: string }): Promise<ReplicaDir> {
    const path = join(resolve(out), assertName("stream", identity.stream));
    const unwritable = (error: unknown) =>
      new ReplicaDirError(
        path,
        `Cannot replicate into the directory as it is not writable (${
          (error as Error).message
        }): current value is "${path}"`,
        { cause: error },
      );
    let lock: Deno.FsFile;
    try {
      await Deno.mkdir(path, { recursive: true });
      lock = await Deno.open(join(path, ".lock"), { read: true, write: true, create: true });
    } catch (error) {
      throw unwritable(error);
    }
    const dir = new ReplicaDir(path, lock);
    try {
      await dir.#hold();
      const found = await dir.#readIdentity();
      if (found && (found.stream !== identity.stream || found.store !== identity.store)) {
        throw new ReplicaDirError(
          path,
          `Cannot replicate into the directory as it holds ${found.stream} from ${found.store}, not ${identity.stream} from ${identity.store}: current value is "${path}"`,
        );
      }
      try {
        await dir.writeJson("replica.json", { format: 1, ...identity } satisfies ReplicaIdentity);
      } catch (error) {
        throw unwritable(error);
      }
      await dir.#removeScratch();
      return dir;
    } catch (error) {
      dir.close();
      throw error;
    }
  }

  /** Takes the directory's lock, or says which process holds it; writes this process's pid. */
  async #hold(): Promise<void> {
    if (!await this.#lock.tryLock(true)) {
      const holder = (await Deno.readTextFile(join(this.path, ".lock")).catch(() => "")).trim();
      throw new ReplicaDirError(
        this.path,
        `Cannot replicate into the directory as another process${
          /^\d+$/.test(holder) ? ` (pid ${holder})` : ""
        } is replicating into it: current value is "${this.path}"`,
      );
    }
    await this.#lock.truncate(0);
    await this.#lock.write(new TextEncoder().encode(`${Deno.pid}\n`));
  }

  /**
   * The replica file of a shard.
   *
   * @param shardId The shard.
   * @returns `DIR/<stream>/<shardId>.sqlite`.
   */
  fileOf(shardId: string): string {
    return join(this.path, `${assertName("shard", shardId)}.sqlite`);
  }

  /**
   * The shards whose files the directory holds.
   *
   * @returns Their ids.
   */
  async shardFiles(): Promise<string[]> {
    const ids: string[] = [];
    for await (const entry of Deno.readDir(this.path)) {
      const match = /^(.+)\.sqlite$/.exec(entry.name);
      if (entry.isFile && match && !entry.name.startsWith(".")) ids.push(match[1]);
    }
    return ids.sort();
  }

  /**
   * Replaces a JSON file in the directory atomically: written beside, synced, renamed.
   *
   * @param name The file's name.
   * @param value What to write.
   */
  async writeJson(name: string, value: unknown): Promise<void> {
    await writeAtomically(join(this.path, name), JSON.stringify(value, null, 2) + "\n");
  }

  async #readIdentity(): Promise<ReplicaIdentity | undefined> {
    const file = join(this.path, "replica.json");
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw new ReplicaDirError(
        this.path,
        `Cannot replicate into the directory as its replica.json is unreadable (${
          (error as Error).message
        }): current value is "${file}"`,
        { cause: error },
      );
    }
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed?.stream === "string" && typeof parsed?.store === "string") return parsed;
    } catch {
      // Reported below.
    }
    throw new ReplicaDirError(
      this.path,
      `Cannot replicate into the directory as its replica.json is not streambolt's: current value is "${file}"`,
    );
  }

  async #removeScratch(): Promise<void> {
    for await (const entry of Deno.readDir(this.path)) {
      if (SCRATCH.test(entry.name)) {
        await Deno.remove(join(this.path, entry.name), { recursive: true }).catch(() => {});
      }
    }
  }
}

/**
 * Writes a file atomically: a temporary file beside it, synced, then renamed over it.
 *
 * @param file The file.
 * @param text Its new contents.
 */
export async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp-${crypto.randomUUID()}`;
  try {
    using handle = await Deno.open(temp, { write: true, createNew: true });
    const bytes = new TextEncoder().encode(text);
    for (let written = 0; written < bytes.length;) {
      written += await handle.write(bytes.subarray(written));
    }
    await handle.sync();
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  try {
    await Deno.rename(temp, file);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
