/**
 * Store URLs: `s3://bucket/prefix`, `file:///abs/dir`, or a plain local path.
 *
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { S3ClientLike } from "../aws_client.ts";
import { InvalidArgumentError } from "../errors.ts";
import { FileSnapshotStore } from "./file_store.ts";
import type { S3SnapshotStoreOptions } from "./s3_store.ts";
import type { SnapshotStore } from "./snapshot_store.ts";

/** A parsed store URL. */
export type StoreLocation =
  | { kind: "s3"; bucket: string; prefix: string }
  | { kind: "file"; root: string };

/**
 * Parses a store URL.
 *
 * @param url `s3://bucket/prefix`, `file:///abs/dir` or a local path.
 * @returns Where the store is.
 * @throws {InvalidArgumentError} For an empty URL, another scheme, or an S3 URL with no bucket.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseStoreUrl } from "./store_url.ts";
 * assert.deepEqual(parseStoreUrl("s3://my-bucket/snapshots"), {
 *   kind: "s3",
 *   bucket: "my-bucket",
 *   prefix: "snapshots",
 * });
 * ```
 */
export function parseStoreUrl(url: string): StoreLocation {
  const bad = (why: string) =>
    new InvalidArgumentError(
      `Cannot use store URL as ${why}: current value is ${JSON.stringify(url)}`,
    );
  if (!url) throw bad("it is empty");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === "s3") {
    const rest = url.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? "" : rest.slice(slash + 1).replace(/^\/+|\/+$/g, "");
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw bad("its bucket name is not a valid S3 bucket name");
    }
    if (prefix.split("/").some((s) => s === "." || s === "..")) {
      throw bad("its prefix has a '.' or '..' segment");
    }
    return { kind: "s3", bucket, prefix };
  }
  if (scheme === "file") {
    try {
      return { kind: "file", root: fileURLToPath(url) };
    } catch (error) {
      throw new InvalidArgumentError(
        `Cannot use store URL as it is not a valid file URL: current value is ${
          JSON.stringify(url)
        }`,
        { cause: error },
      );
    }
  }
  if (scheme !== undefined) throw bad("only s3://, file:// and local paths are supported");
  return { kind: "file", root: resolve(url) };
}

/** Options for {@linkcode openStore}. */
export interface OpenStoreOptions {
  /** Makes the S3 client, only called for `s3://` URLs (so file stores never load it). */
  s3Client?: () => S3ClientLike | Promise<S3ClientLike>;
  /** Extra settings for an S3 store (encryption, bucket owner, part size). */
  s3?: Omit<S3SnapshotStoreOptions, "client" | "bucket" | "prefix">;
}

/**
 * Opens the store a URL names.
 *
 * @param url `s3://bucket/prefix`, `file:///abs/dir` or a local path.
 * @param options How to make an S3 client.
 * @returns The store.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStore } from "./store_url.ts";
 * const store = await openStore("./snapshots"); // a file store: the S3 SDK is not loaded
 * assert.match(store.url, /^file:\/\/.*\/snapshots$/);
 * ```
 */
export async function openStore(url: string, options?: OpenStoreOptions): Promise<SnapshotStore> {
  const location = parseStoreUrl(url);
  if (location.kind === "file") return new FileSnapshotStore({ root: location.root });
  if (!options?.s3Client) {
    throw new InvalidArgumentError(
      `Cannot open S3 store as no S3 client was given: current value is ${JSON.stringify(url)}`,
    );
  }
  // Loaded here, not at the top: the S3 SDK is large and a file store never needs it.
  const { S3SnapshotStore } = await import("./s3_store.ts");
  return new S3SnapshotStore({
    ...options.s3,
    client: await options.s3Client(),
    bucket: location.bucket,
    prefix: location.prefix,
  });
}
