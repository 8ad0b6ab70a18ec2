/**
 * A Kinesis double for unit tests of pure logic (query connections, lifecycle): one shard whose
 * records are held in memory and served by GetShardIterator/GetRecords. Behaviour users depend on
 * is proven against kinesis-local; this only saves starting it where Kinesis is not the subject.
 *
 * @module
 */
import type { KinesisClientLike } from "../../mod.ts";

/** A record to serve. */
export interface FakeRecord {
  partitionKey: string;
  data: string;
}

/** Answers the n-th GetRecords call (1-based) in place of the shard; `undefined` lets the shard
 * answer. Gets the call's abort signal, as the SDK's HTTP handler does. */
export type GetRecordsHook = (
  call: number,
  signal: AbortSignal | undefined,
) => Promise<unknown> | undefined;

/**
 * A call the SDK's HTTP handler never answers: it rejects as that handler does (an `AbortError`,
 * "Request aborted") once `signal` aborts, and not before.
 */
export function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    const abort = () => reject(Object.assign(new Error("Request aborted"), { name: "AbortError" }));
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort, { once: true });
  });
}

/** An in-memory shard behind a `send` that answers the reader's commands. */
export class FakeKinesis {
  readonly records: Array<{ SequenceNumber: string; PartitionKey: string; Data: Uint8Array }> = [];
  /** Commands sent, by name. */
  readonly sent: string[] = [];
  /** Overrides GetRecords answers; see {@linkcode GetRecordsHook}. */
  onGetRecords?: GetRecordsHook;
  #next = 1000n;
  #getRecordsCalls = 0;

  /** Appends records to the shard; returns their sequence numbers. */
  put(records: FakeRecord[]): string[] {
    return records.map((r) => {
      const seq = String(this.#next++);
      this.records.push({
        SequenceNumber: seq,
        PartitionKey: r.partitionKey,
        Data: new TextEncoder().encode(r.data),
      });
      return seq;
    });
  }

  /** The client to hand to streambolt. */
  get client(): KinesisClientLike {
    return {
      send: (command: unknown, options?: { abortSignal?: AbortSignal }) =>
        this.#send(command, options?.abortSignal),
      config: { region: "fake" },
    } as unknown as KinesisClientLike;
  }

  #send(command: unknown, signal?: AbortSignal): Promise<unknown> {
    const name = (command as object).constructor.name;
    const input = (command as { input: Record<string, unknown> }).input;
    this.sent.push(name);
    if (name === "GetShardIteratorCommand") {
      const after = input.ShardIteratorType === "TRIM_HORIZON"
        ? -1n
        : BigInt(input.StartingSequenceNumber as string);
      const index = this.records.findIndex((r) => BigInt(r.SequenceNumber) > after);
      return Promise.resolve({ ShardIterator: String(index === -1 ? this.records.length : index) });
    }
    if (name === "GetRecordsCommand") {
      const hooked = this.onGetRecords?.(++this.#getRecordsCalls, signal);
      if (hooked) return hooked;
      const from = Number(input.ShardIterator);
      const limit = (input.Limit as number | undefined) ?? 10_000;
      const page = this.records.slice(from, from + limit);
      return Promise.resolve({
        Records: page,
        NextShardIterator: String(from + page.length),
        MillisBehindLatest: 0,
      });
    }
    return Promise.reject(new Error(`FakeKinesis does not answer ${name}`));
  }
}
