/**
 * Encoding of snapshot files for storage (zstd or none) with a SHA-256 of the stored bytes,
 * computed in the same streaming pass.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import type { SnapshotEncoding } from "./snapshot_key.ts";

/** What an encode or decode pass measured. */
export interface CodecResult {
  /** Hex SHA-256 of the stored (encoded) bytes. */
  sha256: string;
  /** Size of the stored (encoded) bytes. */
  storedSize: number;
  /** Size of the plain SQLite bytes. */
  rawSize: number;
}

class Tap extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  override _transform(
    chunk: Uint8Array,
    _: BufferEncoding,
    done: TransformCallback,
  ): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

const CHUNK = 1024 * 1024;

/** Streams `source` through an optional stage into `target`, hashing both ends. */
async function transcode(
  source: string,
  target: string,
  stage: NodeJS.ReadWriteStream | undefined,
  storedIsInput: boolean,
): Promise<CodecResult> {
  const input = new Tap();
  const output = new Tap();
  await pipeline([
    createReadStream(source, { highWaterMark: CHUNK }),
    input,
    ...(stage ? [stage] : []),
    output,
    createWriteStream(target),
  ]);
  const [stored, raw] = storedIsInput ? [input, output] : [output, input];
  return { sha256: stored.hash.digest("hex"), storedSize: stored.bytes, rawSize: raw.bytes };
}

/**
 * Encodes a plain SQLite file for storage, hashing the encoded bytes.
 *
 * @param source The plain SQLite file.
 * @param target The encoded file to write.
 * @param encoding `"zstd"` or `"none"`.
 * @param level zstd compression level.
 * @returns The checksum and sizes.
 */
export function encodeFile(
  source: string,
  target: string,
  encoding: SnapshotEncoding,
  level = 3,
): Promise<CodecResult> {
  const stage = encoding === "zstd"
    ? zlib.createZstdCompress({
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: level,
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
      },
    })
    : undefined;
  return transcode(source, target, stage, false);
}

/**
 * Decodes a stored snapshot file into plain SQLite, hashing the stored bytes as it reads.
 *
 * @param source The stored (encoded) file.
 * @param target The plain SQLite file to write.
 * @param encoding How `source` is encoded.
 * @returns The checksum and sizes.
 */
export function decodeFile(
  source: string,
  target: string,
  encoding: SnapshotEncoding,
): Promise<CodecResult> {
  return transcode(
    source,
    target,
    encoding === "zstd" ? zlib.createZstdDecompress() : undefined,
    true,
  );
}

/**
 * Hashes a file's bytes.
 *
 * @param file The file.
 * @returns Hex SHA-256.
 */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
    hash.update(chunk as Uint8Array);
  }
  return hash.digest("hex");
}
