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
import type { SnapshotEncoding } from "./snapshot.ts";

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

/**
 * Encodes a plain SQLite file for storage, hashing the encoded bytes.
 *
 * @param source The plain SQLite file.
 * @param target The encoded file to write.
 * @param encoding `"zstd"` or `"none"`.
 * @param level zstd compression level.
 * @returns The checksum and sizes.
 */
export async function encodeFile(
  source: string,
  target: string,
  encoding: SnapshotEncoding,
  level = 3,
): Promise<CodecResult> {
  const raw = new Tap();
  const stored = new Tap();
  const stages: NodeJS.ReadWriteStream[] = [raw];
  if (encoding === "zstd") {
    stages.push(zlib.createZstdCompress({
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: level,
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
      },
    }));
  }
  stages.push(stored);
  await pipeline([
    createReadStream(source, { highWaterMark: CHUNK }),
    ...stages,
    createWriteStream(target),
  ]);
  return {
    sha256: stored.hash.digest("hex"),
    storedSize: stored.bytes,
    rawSize: raw.bytes,
  };
}

/**
 * Decodes a stored snapshot file into plain SQLite, hashing the stored bytes as it reads.
 *
 * @param source The stored (encoded) file.
 * @param target The plain SQLite file to write.
 * @param encoding How `source` is encoded.
 * @returns The checksum and sizes.
 */
export async function decodeFile(
  source: string,
  target: string,
  encoding: SnapshotEncoding,
): Promise<CodecResult> {
  const stored = new Tap();
  const raw = new Tap();
  const stages: NodeJS.ReadWriteStream[] = [stored];
  if (encoding === "zstd") stages.push(zlib.createZstdDecompress());
  stages.push(raw);
  await pipeline([
    createReadStream(source, { highWaterMark: CHUNK }),
    ...stages,
    createWriteStream(target),
  ]);
  return {
    sha256: stored.hash.digest("hex"),
    storedSize: stored.bytes,
    rawSize: raw.bytes,
  };
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
