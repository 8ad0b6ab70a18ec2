/**
 * Both store kinds for a test: a file store in a temp dir, and an S3 store on fauxqs with a
 * fresh bucket.
 *
 * @module
 */
import type { S3Client } from "@aws-sdk/client-s3";
import {
  FileSnapshotStore,
  S3SnapshotStore,
  type S3SnapshotStoreOptions,
  type SnapshotStore,
} from "../../mod.ts";
import { createBucket } from "./emulators.ts";

/** Makes a new, empty store of one kind. */
export interface StoreKind {
  name: "file" | "s3";
  make(options?: Partial<S3SnapshotStoreOptions>): Promise<SnapshotStore>;
}

let bucketCounter = 0;

/** The two store kinds; `s3` is the client of a running fauxqs. */
export function storeKinds(s3: S3Client, tempDir: string): StoreKind[] {
  return [
    {
      name: "file",
      make: async () => new FileSnapshotStore({ root: await Deno.makeTempDir({ dir: tempDir }) }),
    },
    {
      name: "s3",
      make: async (options) => {
        const bucket = `test-bucket-${++bucketCounter}-${crypto.randomUUID().slice(0, 8)}`;
        await createBucket(s3, bucket);
        return new S3SnapshotStore({ client: s3, bucket, prefix: "snaps", ...options });
      },
    },
  ];
}
