/**
 * Counts the requests an S3 client sends, by command, with SDK middleware inside the retry
 * loop (as the fault suite's `interceptCommands` does): a retried call counts each attempt.
 *
 * @module
 */
import { interceptCommands } from "../tests/support/faults.ts";

/** Requests by command name (e.g. `ListObjectsV2Command`). */
export type RequestCounts = Record<string, number>;

/** Counts the requests of one client while a piece of work runs. */
export class RequestCounter {
  #counts?: Map<string, number>;

  /**
   * Attaches the counter to a client (once per client).
   *
   * @param client An AWS SDK v3 client.
   */
  constructor(client: unknown) {
    interceptCommands(client, (command) => {
      if (this.#counts) this.#counts.set(command, (this.#counts.get(command) ?? 0) + 1);
    }, "benchRequestCounter");
  }

  /**
   * Runs `work` and counts the requests the client sent meanwhile; nothing else may use the
   * client while it runs.
   *
   * @param work The work.
   * @returns What it returned, and the counts by command.
   */
  async count<T>(work: () => Promise<T>): Promise<[T, RequestCounts]> {
    if (this.#counts) throw new Error("Cannot count requests as another count is running");
    this.#counts = new Map();
    try {
      const result = await work();
      const counts = Object.fromEntries(
        [...this.#counts].map(([k, v]) => [k.replace(/Command$/, ""), v] as const).sort(),
      );
      return [result, counts];
    } finally {
      this.#counts = undefined;
    }
  }
}

/**
 * Counts as a short string, e.g. `List 1, Get 2, Put 1`.
 *
 * @param counts The counts.
 * @returns The string.
 */
export function formatCounts(counts: RequestCounts): string {
  const short: Record<string, string> = {
    ListObjectsV2: "LIST",
    GetObject: "GET",
    PutObject: "PUT",
    DeleteObjects: "DELETE",
    CreateMultipartUpload: "MPU-create",
    UploadPart: "MPU-part",
    CompleteMultipartUpload: "MPU-complete",
  };
  const entries = Object.entries(counts);
  if (entries.length === 0) return "none";
  return entries.map(([k, v]) => `${short[k] ?? k} ${v}`).join(", ");
}
