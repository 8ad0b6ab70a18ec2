/**
 * Producing KPL-aggregated records in tests with the AWS Labs aggregation library.
 *
 * @module
 */
// Test-only, so not in deno.json's import map (which deno publish ships): a full specifier.
// deno-lint-ignore no-import-prefix
import agg from "npm:aws-kinesis-agg@4.2.8";

/** A user record to aggregate. */
export interface UserRecord {
  partitionKey: string;
  explicitHashKey?: string;
  data: Uint8Array;
}

/** One aggregated Kinesis record, ready for PutRecord. */
export interface AggregatedRecord {
  partitionKey: string;
  explicitHashKey?: string;
  data: Uint8Array;
}

/** Aggregates user records the way the KPL does. */
export function aggregate(records: UserRecord[]): Promise<AggregatedRecord[]> {
  return new Promise((resolve, reject) => {
    const out: AggregatedRecord[] = [];
    agg.aggregate(
      records,
      (
        encoded: { partitionKey: string; explicitHashKey?: string; data: Uint8Array },
        done?: () => void,
      ) => {
        out.push({
          partitionKey: encoded.partitionKey,
          explicitHashKey: encoded.explicitHashKey,
          data: new Uint8Array(encoded.data),
        });
        done?.();
      },
      () => resolve(out),
      (error: unknown) => reject(error),
    );
  });
}
