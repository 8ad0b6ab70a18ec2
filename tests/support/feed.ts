/**
 * A steady trickle of records into a stream, for tests of producers that follow it: a few
 * records every few milliseconds until stopped, each put recorded once its PutRecords call
 * has returned.
 *
 * @module
 */
import type { KinesisClient } from "@aws-sdk/client-kinesis";
import { makeRecords, putRecords, type PutResult } from "./data.ts";

/** A running trickle. */
export interface Feed {
  /** How many batches were put so far. */
  batches(): number;
  /** Stops after the batch in flight; resolves once every put is recorded. */
  stop(): Promise<void>;
}

/**
 * Puts `perBatch` records every `everyMs` into `stream`, appending what was put to `put`.
 * Records are seeded from `seed`, one seed per batch.
 */
export function startFeed(
  kinesis: KinesisClient,
  stream: string,
  put: PutResult[],
  options: { seed: number; perBatch?: number; everyMs?: number },
): Feed {
  let stopped = false;
  let batches = 0;
  const loop = (async () => {
    while (!stopped) {
      const records = makeRecords(options.perBatch ?? 3, {
        seed: options.seed * 1_000 + batches,
        prefix: `feed${options.seed}-`,
      });
      put.push(...await putRecords(kinesis, stream, records, 1));
      batches++;
      await new Promise((r) => setTimeout(r, options.everyMs ?? 50));
    }
  })();
  return {
    batches: () => batches,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
