/**
 * Opening the store named by `--store`, with the S3 flags every store-using command shares.
 *
 * @module
 */
import type { Snapshot } from "../snapshot_key.ts";
import type { SnapshotStore } from "../store/snapshot_store.ts";
import { openStore, parseStoreUrl } from "../store/store_url.ts";
import { UsageError } from "./_common.ts";

/** The flags for a store. */
export const STORE_OPTIONS = {
  store: { type: "string" },
  "s3-path-style": { type: "boolean" },
  sse: { type: "string" },
  "sse-kms-key-id": { type: "string" },
  "expected-bucket-owner": { type: "string" },
} as const;

/** Help text for the store flags. */
export const STORE_HELP =
  `  --store URL                 s3://bucket/prefix, file:///abs/dir or a local path
  --s3-path-style             path-style S3 addressing (automatic for IP/localhost endpoints)
  --sse AES256|aws:kms        server-side encryption of uploads (commands that only read
                              or delete upload nothing: S3 decrypts for them)
  --sse-kms-key-id ID         the KMS key for --sse aws:kms
  --expected-bucket-owner ID  fail unless this account owns the bucket`;

/** Opens the store; `--store` is required. S3 code is loaded only for s3:// URLs. */
export async function openCliStore(
  values: Record<string, unknown>,
  command: string,
): Promise<SnapshotStore> {
  const url = values.store;
  if (typeof url !== "string" || url === "") {
    throw new UsageError(
      `Cannot run "${command}" as --store is required: current value is ${
        JSON.stringify(url ?? null)
      }`,
    );
  }
  const sse = values.sse as string | undefined;
  if (sse !== undefined && sse !== "AES256" && sse !== "aws:kms") {
    throw new UsageError(
      `Cannot use --sse as it must be AES256 or aws:kms: current value is ${JSON.stringify(sse)}`,
    );
  }
  parseStoreUrl(url); // fail on a bad URL before loading anything
  return await openStore(url, {
    s3Client: async () =>
      (await import("./_aws.ts")).makeS3Client(Boolean(values["s3-path-style"])),
    s3: {
      serverSideEncryption: sse as "AES256" | "aws:kms" | undefined,
      sseKmsKeyId: values["sse-kms-key-id"] as string | undefined,
      expectedBucketOwner: values["expected-bucket-owner"] as string | undefined,
    },
  });
}

/** A snapshot as the CLI prints it in JSON. */
export interface SnapshotJson {
  stream: string;
  shardId: string;
  sequenceNumber: string;
  final: boolean;
  key: string;
  kind: string;
  baseSequenceNumber?: string;
  encoding: string;
  size?: number;
  lastModified?: string;
}

/** A snapshot as the CLI prints it in JSON. */
export function snapshotJson(s: Snapshot): SnapshotJson {
  return {
    stream: s.stream,
    shardId: s.shardId,
    sequenceNumber: s.sequenceNumber,
    final: s.final,
    key: s.key,
    kind: s.kind,
    baseSequenceNumber: s.baseSequenceNumber,
    encoding: s.encoding,
    size: s.size,
    lastModified: s.lastModified?.toISOString(),
  };
}
