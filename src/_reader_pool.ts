/**
 * Read-only connections to a replica's database, one per query in flight (so queries may
 * overlap, each in its own read transaction), reused when idle. The database file can be
 * replaced: new queries go to the new file, and the old one is removed once its last query
 * ends.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** Idle and busy read-only connections to the current database file. */
export class ReaderPool {
  #file: string;
  #idle: DatabaseSync[] = [];
  /** Connections in use, with the file each reads. */
  #busy = new Map<DatabaseSync, string>();
  /** Files replaced by a newer one, removed once no query reads them. */
  #retired = new Set<string>();
  #closed = false;

  constructor(file: string) {
    this.#file = file;
  }

  /** The file new queries read. */
  get file(): string {
    return this.#file;
  }

  /** Opens one connection ahead of the first query (and so checks the file opens). */
  warm(): void {
    this.#idle.push(new DatabaseSync(this.#file, { readOnly: true }));
  }

  /**
   * Runs `fn` in a read transaction on a connection of its own.
   *
   * @returns What `fn` returns.
   */
  async query<T>(fn: (db: DatabaseSync) => T | Promise<T>): Promise<T> {
    const file = this.#file;
    const reader = this.#idle.pop() ?? new DatabaseSync(file, { readOnly: true });
    this.#busy.set(reader, file);
    try {
      reader.exec("BEGIN");
      return await fn(reader);
    } finally {
      if (reader.isTransaction) reader.exec("COMMIT");
      this.#busy.delete(reader);
      if (!this.#closed && file === this.#file) this.#idle.push(reader);
      else {
        reader.close();
        await this.#removeRetired();
      }
    }
  }

  /** Sends new queries to `file`; the current file is removed once its queries end. */
  async replace(file: string): Promise<void> {
    for (const reader of this.#idle.splice(0)) reader.close();
    this.#retired.add(this.#file);
    this.#file = file;
    await this.#removeRetired();
  }

  /** Closes the idle connections; busy ones close when their query ends. */
  close(): void {
    this.#closed = true;
    for (const reader of this.#idle.splice(0)) reader.close();
  }

  async #removeRetired(): Promise<void> {
    const reading = new Set(this.#busy.values());
    for (const file of this.#retired) {
      if (reading.has(file)) continue;
      this.#retired.delete(file);
      for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(file + suffix).catch(() => {});
    }
  }
}
