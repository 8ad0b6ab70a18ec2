/**
 * A {@linkcode SnapshotStore} in an S3 bucket (or any S3-compatible store). Uploads go through
 * `@aws-sdk/lib-storage` (parallel multipart for large files, aborted on failure so no parts
 * are left behind) with an S3 SHA-256 checksum; large downloads use parallel ranged GETs.
 *
 * @module
 */
import type { GetObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import type { S3ClientLike } from "../aws_client.ts";
import { createReadStream } from "node:fs";
import { ConfigurationError, InvalidArgumentError } from "../errors.ts";
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

/** Options for {@linkcode S3SnapshotStore}. */
export interface S3SnapshotStoreOptions {
  /** The S3 client, an `S3Client` (region, credentials and endpoint come from the standard
   * chain). Its own retries (`maxAttempts`, standard mode) are the retry budget of every S3
   * call: streambolt adds no retry loop around them. */
  client: S3ClientLike;
  /** The bucket name. */
  bucket: string;
  /** A key prefix for every snapshot, e.g. `"snapshots"`; no leading or trailing `/` needed. */
  prefix?: string;
  /** Size of each multipart part (and download range) in bytes. Defaults to 8 MiB, the AWS
   * CLI's default; S3 allows 5 MiB to 5 GiB. */
  partSize?: number;
  /** How many parts (or download ranges) move at once. Defaults to 4. */
  concurrency?: number;
  /** Server-side encryption for uploads: `"AES256"` (SSE-S3) or `"aws:kms"` (SSE-KMS). */
  serverSideEncryption?: "AES256" | "aws:kms";
  /** The KMS key id for `"aws:kms"` encryption. */
  sseKmsKeyId?: string;
  /** The account id that must own the bucket; requests fail otherwise. */
  expectedBucketOwner?: string;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

let sdk:
  | Promise<[typeof import("@aws-sdk/client-s3"), typeof import("@aws-sdk/lib-storage")]>
  | undefined;

/** The S3 SDK and lib-storage, loaded on first use, so that importing streambolt for a file
 * store never loads them. */
function s3Sdk(): Promise<
  [typeof import("@aws-sdk/client-s3"), typeof import("@aws-sdk/lib-storage")]
> {
  return sdk ??= Promise.all([import("@aws-sdk/client-s3"), import("@aws-sdk/lib-storage")]);
}

/**
 * Keeps snapshots in an S3 bucket under an optional prefix.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { S3Client } from "@aws-sdk/client-s3";
 * import { S3SnapshotStore } from "./s3_store.ts";
 * const store = new S3SnapshotStore({
 *   client: new S3Client({ region: "us-east-1" }),
 *   bucket: "my-bucket",
 *   prefix: "snapshots",
 * });
 * assert.equal(store.url, "s3://my-bucket/snapshots");
 * ```
 */
export class S3SnapshotStore implements SnapshotStore {
  /** The bucket. */
  readonly bucket: string;
  /** The key prefix, empty or ending in `/`. */
  readonly prefix: string;
  /** An `s3://bucket/prefix` URL naming the store. */
  readonly url: string;
  #client: S3ClientLike;
  #partSize: number;
  #concurrency: number;
  #options: S3SnapshotStoreOptions;

  /**
   * Creates a store over a bucket.
   *
   * @param options The client, bucket, prefix and upload settings.
   */
  constructor(options: S3SnapshotStoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket ?? "")) {
      throw new InvalidArgumentError(
        `Cannot use S3 bucket as its name is not valid: current value is ${
          JSON.stringify(options.bucket)
        }`,
      );
    }
    const trimmed = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.bucket = options.bucket;
    this.prefix = trimmed === "" ? "" : `${trimmed}/`;
    this.url = `s3://${this.bucket}/${trimmed}`;
    this.#client = options.client;
    this.#partSize = Math.max(
      5 * 1024 * 1024,
      options.partSize ?? DEFAULT_PART_SIZE,
    );
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#options = options;
  }

  /**
   * Lists every object under the store's prefix plus `prefix`, following every page.
   *
   * @param prefix The key prefix, relative to the store's prefix.
   * @param options Aborts the listing.
   * @returns The objects, keys relative to the store's prefix.
   */
  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    const [{ ListObjectsV2Command }] = await s3Sdk();
    let token: string | undefined;
    do {
      const page = await this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          ContinuationToken: token,
          ExpectedBucketOwner: this.#options.expectedBucketOwner,
        }),
        { abortSignal: options?.signal },
      ).catch((error) => {
        throw this.#missingBucket(error, `list s3://${this.bucket}/${this.prefix + prefix}`);
      });
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(this.prefix)) continue;
        yield {
          key: object.Key.slice(this.prefix.length),
          size: object.Size ?? 0,
          lastModified: object.LastModified,
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * Uploads a file whole or not at all, with a SHA-256 checksum that S3 verifies.
   *
   * @param key The key, relative to the store's prefix.
   * @param file The local file.
   * @param options Metadata and upload options.
   */
  async put(key: string, file: string, options: PutOptions): Promise<void> {
    const [, { Upload }] = await s3Sdk();
    const abortController = new AbortController();
    const onAbort = () => abortController.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const { size } = await Deno.stat(file);
    const upload = new Upload({
      // lib-storage needs the whole client; S3ClientLike documents that it is an S3Client.
      client: this.#client as unknown as S3Client,
      partSize: this.#partSize,
      queueSize: this.#concurrency,
      leavePartsOnError: false,
      abortController,
      params: {
        Bucket: this.bucket,
        Key: this.prefix + key,
        Body: createReadStream(file, { highWaterMark: 1024 * 1024 }),
        ContentLength: size,
        ContentType: "application/octet-stream",
        Metadata: options.metadata,
        ChecksumAlgorithm: "SHA256",
        IfNoneMatch: options.ifNoneMatch === false ? undefined : "*",
        ServerSideEncryption: this.#options.serverSideEncryption,
        SSEKMSKeyId: this.#options.sseKmsKeyId,
        ExpectedBucketOwner: this.#options.expectedBucketOwner,
      },
    });
    if (options.onProgress) {
      upload.on(
        "httpUploadProgress",
        (p) => options.onProgress?.(p.loaded ?? 0),
      );
    }
    try {
      await upload.done();
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (
        name === "PreconditionFailed" || name === "ConditionalRequestConflict"
      ) {
        throw new ObjectExistsError(key, { cause: error });
      }
      throw this.#missingBucket(error, `upload s3://${this.bucket}/${this.prefix + key}`);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Downloads an object to a file: one GET for an object of up to one part, then the other
   * parts in parallel byte ranges, each pinned to the first response's ETag.
   *
   * @param key The key, relative to the store's prefix.
   * @param file The local file to write.
   * @param options Download options.
   * @returns The metadata and size.
   */
  async download(
    key: string,
    file: string,
    options?: DownloadOptions,
  ): Promise<DownloadResult> {
    const signal = options?.signal;
    const handle = await Deno.open(file, { write: true, create: true, truncate: true });
    let first: GetObjectCommandOutput;
    try {
      first = await this.#get(key, `bytes=0-${this.#partSize - 1}`, undefined, signal)
        .catch((error) => {
          // An empty object has no byte 0: ask for it whole.
          if ((error as { name?: string }).name !== "InvalidRange") throw error;
          return this.#get(key, undefined, undefined, signal);
        });
      await writeBody(handle, first);
    } finally {
      handle.close();
    }
    const size = Number(/\/(\d+)$/.exec(first.ContentRange ?? "")?.[1] ?? first.ContentLength ?? 0);
    const starts: number[] = [];
    for (let start = this.#partSize; start < size; start += this.#partSize) starts.push(start);
    // Each worker writes through its own handle, so seeks never interleave. The first part that
    // fails stops the others, and the download ends only once none is still writing the file.
    const failed = new AbortController();
    const parts = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal;
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      let handle: Deno.FsFile | undefined;
      try {
        handle = await Deno.open(file, { write: true });
        for (let start = starts.shift(); start !== undefined; start = starts.shift()) {
          const end = Math.min(size, start + this.#partSize) - 1;
          const part = await this.#get(key, `bytes=${start}-${end}`, first.ETag, parts);
          await handle.seek(start, Deno.SeekMode.Start);
          await writeBody(handle, part);
        }
      } catch (error) {
        // Only the first failure is the download's; the others are the stop it caused.
        failure ??= { error };
        failed.abort();
      } finally {
        handle?.close();
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, starts.length) }, worker));
    if (failure) throw failure.error;
    return { metadata: first.Metadata ?? {}, size };
  }

  async #get(
    key: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<GetObjectCommandOutput> {
    const [{ GetObjectCommand }] = await s3Sdk();
    return await this.#client.send(
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.prefix + key,
        Range: range,
        IfMatch: ifMatch,
        ExpectedBucketOwner: this.#options.expectedBucketOwner,
      }),
      { abortSignal: signal },
    ).catch((error) => {
      throw this.#missingBucket(error, `download s3://${this.bucket}/${this.prefix + key}`);
    });
  }

  /** A missing bucket as an error naming it; any other error as it is. */
  #missingBucket(error: unknown, action: string): unknown {
    if ((error as { name?: string })?.name !== "NoSuchBucket") return error;
    return new ConfigurationError(
      "bucket",
      `Cannot ${action} as the bucket does not exist: current value is ${this.bucket}`,
      { cause: error },
    );
  }

  /**
   * Reads an object's size, user metadata and modification time with one HeadObject.
   *
   * @param key The key, relative to the store's prefix.
   * @param options Aborts the request.
   * @returns The size, metadata and modification time, or `undefined` when S3 answers 404.
   */
  async head(key: string, options?: HeadOptions): Promise<HeadResult | undefined> {
    const [{ HeadObjectCommand }] = await s3Sdk();
    try {
      const out = await this.#client.send(
        new HeadObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          ExpectedBucketOwner: this.#options.expectedBucketOwner,
        }),
        { abortSignal: options?.signal },
      );
      return {
        size: out.ContentLength ?? 0,
        metadata: out.Metadata ?? {},
        lastModified: out.LastModified,
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * Deletes objects, at most 1,000 per request.
   *
   * @param keys Keys relative to the store's prefix.
   * @param options Aborts the deletion between requests.
   */
  async delete(keys: string[], options?: DeleteOptions): Promise<void> {
    const [{ DeleteObjectsCommand }] = await s3Sdk();
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      const result = await this.#client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: {
            Objects: chunk.map((key) => ({ Key: this.prefix + key })),
            Quiet: true,
          },
          ExpectedBucketOwner: this.#options.expectedBucketOwner,
        }),
        { abortSignal: options?.signal },
      ).catch((error) => {
        throw this.#missingBucket(error, `delete from s3://${this.bucket}/${this.prefix}`);
      });
      const failed = result.Errors?.[0];
      if (failed) {
        throw new Error(
          `Cannot delete snapshot as S3 refused it (${failed.Code}): current value is "${failed.Key}"`,
        );
      }
    }
  }
}

/** Whether an S3 error is a 404 (a HEAD's "NotFound" has no body, so no other code). */
function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotFound" || e?.name === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404;
}

/** Writes a GET response's body at the handle's position. */
async function writeBody(handle: Deno.FsFile, response: GetObjectCommandOutput): Promise<void> {
  if (!response.Body) return;
  // A Node stream (NodeHttpHandler) or a web stream (fetch): both iterate.
  for await (const chunk of response.Body as unknown as AsyncIterable<Uint8Array>) {
    let written = 0;
    while (written < chunk.length) written += await handle.write(chunk.subarray(written));
  }
}
