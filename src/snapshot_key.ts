/**
 * The {@linkcode Snapshot} type and the naming rules that map a snapshot to its store key and
 * local file. Keys carry the stream, the shard and the decimal sequence number (and, for a
 * delta, the sequence number of the point it applies to), so a listing alone tells what is
 * stored:
 *
 * ```text
 * <stream>/<shardId>/<sequenceNumber>[.final].sqlite[.zst]          a full snapshot
 * <stream>/<shardId>/<sequenceNumber>.from-<base>.delta[.zst]       a delta on the point <base>
 * ```
 *
 * A delta's name does not match the full snapshot's pattern, so readers of format 1 (which know
 * only full snapshots) pass over it and can never mistake it for one.
 *
 * @module
 */
import { join } from "node:path";
import { InvalidArgumentError } from "./errors.ts";

/**
 * The sequence number of a snapshot that holds no records yet. A generator's `bootstrap`
 * returns it to start reading at the beginning of the shard (`TRIM_HORIZON`). It compares
 * below every real Kinesis sequence number.
 */
export const BOOTSTRAP_SEQUENCE = "0";

/** How the bytes of a stored snapshot are encoded. */
export type SnapshotEncoding = "zstd" | "none";

/** What a stored object holds: a whole database (`full`), or the changes from an earlier point
 * of the same shard to a later one (`delta`). */
export type SnapshotKind = "full" | "delta";

/** One snapshot of one shard, as found in a store. */
export interface Snapshot {
  /** The Kinesis stream name. */
  stream: string;
  /** The shard the snapshot was taken of. */
  shardId: string;
  /** The sequence number of the last record applied, in decimal; `BOOTSTRAP_SEQUENCE` if none. */
  sequenceNumber: string;
  /** True when the shard was closed (resharded) and this snapshot holds all of its records. */
  final: boolean;
  /** The key of the snapshot inside its store. */
  key: string;
  /** A whole database, or a delta applied to the point `baseSequenceNumber` of the shard. */
  kind: SnapshotKind;
  /** For a delta: the sequence number of the point it applies to. */
  baseSequenceNumber?: string;
  /** How the stored bytes are encoded; a downloaded `localFile` is always plain SQLite. */
  encoding: SnapshotEncoding;
  /** Where the plain SQLite file is (or will be, after a download) on the local disk. */
  localFile: string;
  /** Size of the stored object in bytes, when the store reported it. */
  size?: number;
  /** When the stored object was written, when the store reported it. */
  lastModified?: Date;
}

/** The parts of a snapshot that its key encodes. */
export interface SnapshotKeyParts {
  /** The Kinesis stream name. */
  stream: string;
  /** The shard id. */
  shardId: string;
  /** The decimal sequence number of the last record applied. */
  sequenceNumber: string;
  /** Whether the shard was closed and this is its last snapshot. */
  final: boolean;
  /** How the stored bytes are encoded. */
  encoding: SnapshotEncoding;
  /** `full` (the default) or `delta`. */
  kind?: SnapshotKind;
  /** For a delta: the sequence number of the point it applies to. */
  baseSequenceNumber?: string;
}

const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,256}$/;
const SEQUENCE_PATTERN = /^(0|[1-9][0-9]{0,127})$/;
const SEQ = "(0|[1-9][0-9]{0,127})";
const FULL_PATTERN = new RegExp(`^${SEQ}(\\.final)?\\.sqlite(\\.zst)?$`);
const DELTA_PATTERN = new RegExp(`^${SEQ}\\.from-${SEQ}\\.delta(\\.zst)?$`);

/**
 * Checks that a stream name or shard id is safe to use as one segment of a key or path.
 *
 * @param what What the value is, for the error message (e.g. `"stream"`).
 * @param value The value to check.
 * @returns The value, unchanged.
 * @throws {InvalidArgumentError} When the value is empty, has a separator or is `.`/`..`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertName } from "./snapshot_key.ts";
 * assert.equal(assertName("stream", "orders"), "orders");
 * ```
 */
export function assertName(what: string, value: string): string {
  if (!NAME_PATTERN.test(value) || value === "." || value === "..") {
    throw new InvalidArgumentError(
      `Cannot use ${what} name as it must be 1-256 letters, digits, '_', '-' or '.': current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

/**
 * Checks that a value is a decimal sequence number.
 *
 * @param value The value to check.
 * @returns The value, unchanged.
 * @throws {InvalidArgumentError} When the value is not a decimal number.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { assertSequenceNumber } from "./snapshot_key.ts";
 * assertSequenceNumber("49590338271490256608559692538361571095921575989136588898");
 * ```
 */
export function assertSequenceNumber(value: string): string {
  if (typeof value !== "string" || !SEQUENCE_PATTERN.test(value)) {
    throw new InvalidArgumentError(
      `Cannot use sequence number as it is not a decimal number: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

/**
 * Compares two Kinesis sequence numbers as integers (they are too large for `number`).
 *
 * @param a A decimal sequence number.
 * @param b A decimal sequence number.
 * @returns A negative number when `a < b`, zero when equal, a positive number when `a > b`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareSequenceNumbers } from "./snapshot_key.ts";
 * assert.ok(compareSequenceNumbers("9", "10") < 0); // 9 < 10, unlike string order
 * ```
 */
export function compareSequenceNumbers(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Orders snapshots of one shard from oldest to newest: by sequence number, and at the same
 * sequence number a final snapshot after one that is not, and a full snapshot after a delta (it
 * is the cheaper way to reach the same point).
 *
 * @param a A snapshot.
 * @param b A snapshot.
 * @returns A negative number when `a` is older than `b`, zero when equal, else positive.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareSnapshots, parseSnapshotKey } from "./snapshot_key.ts";
 * const a = parseSnapshotKey("s/shardId-0/9.sqlite.zst")!;
 * const b = parseSnapshotKey("s/shardId-0/10.sqlite.zst")!;
 * assert.ok(compareSnapshots(a, b) < 0);
 * ```
 */
export function compareSnapshots(
  a: Pick<SnapshotKeyParts, "sequenceNumber" | "final" | "kind">,
  b: Pick<SnapshotKeyParts, "sequenceNumber" | "final" | "kind">,
): number {
  return compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber) ||
    Number(a.final) - Number(b.final) ||
    Number((a.kind ?? "full") === "full") - Number((b.kind ?? "full") === "full");
}

/**
 * The key prefix under which the snapshots of one shard (or, without a shard, one stream) live.
 *
 * @param stream The stream name.
 * @param shardId The shard id; omit it for the whole stream.
 * @returns The prefix, ending in `/`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { snapshotPrefix } from "./snapshot_key.ts";
 * assert.equal(snapshotPrefix("orders", "shardId-000000000000"), "orders/shardId-000000000000/");
 * ```
 */
export function snapshotPrefix(stream: string, shardId?: string): string {
  assertName("stream", stream);
  if (shardId === undefined) return `${stream}/`;
  return `${stream}/${assertName("shard", shardId)}/`;
}

/**
 * Builds the store key of a snapshot.
 *
 * @param parts The stream, shard, sequence number, finality and encoding; for a delta its kind
 * and the point it applies to.
 * @returns The key, e.g. `orders/shardId-000000000000/4959...898.sqlite.zst`, or for a delta
 * `orders/shardId-000000000000/4959...950.from-4959...898.delta.zst`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { snapshotKey } from "./snapshot_key.ts";
 * const key = snapshotKey({
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   sequenceNumber: "42",
 *   final: false,
 *   encoding: "zstd",
 * });
 * assert.equal(key, "orders/shardId-000000000000/42.sqlite.zst");
 * ```
 */
export function snapshotKey(parts: SnapshotKeyParts): string {
  assertSequenceNumber(parts.sequenceNumber);
  const prefix = snapshotPrefix(parts.stream, parts.shardId);
  const zst = parts.encoding === "zstd" ? ".zst" : "";
  if ((parts.kind ?? "full") === "full") {
    return `${prefix}${parts.sequenceNumber}${parts.final ? ".final" : ""}.sqlite${zst}`;
  }
  const base = assertSequenceNumber(parts.baseSequenceNumber ?? "");
  if (parts.final || compareSequenceNumbers(base, parts.sequenceNumber) >= 0) {
    throw new InvalidArgumentError(
      `Cannot name a delta that is final or does not move forward: current value is ${base} -> ${parts.sequenceNumber}`,
    );
  }
  return `${prefix}${parts.sequenceNumber}.from-${base}.delta${zst}`;
}

/**
 * Parses a store key into the parts of a snapshot.
 *
 * @param key A key relative to the store's root.
 * @returns The parts, or `undefined` when the key is not a snapshot key.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSnapshotKey } from "./snapshot_key.ts";
 * assert.deepEqual(parseSnapshotKey("orders/shardId-000000000000/42.final.sqlite.zst"), {
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   sequenceNumber: "42",
 *   final: true,
 *   encoding: "zstd",
 *   kind: "full",
 * });
 * assert.equal(parseSnapshotKey("orders/shardId-000000000000/50.from-42.delta.zst")?.kind, "delta");
 * assert.equal(parseSnapshotKey("orders/readme.txt"), undefined);
 * ```
 */
export function parseSnapshotKey(
  key: string,
): (SnapshotKeyParts & { kind: SnapshotKind }) | undefined {
  const segments = key.split("/");
  if (segments.length !== 3) return undefined;
  const [stream, shardId, file] = segments;
  if (!NAME_PATTERN.test(stream) || stream === "." || stream === "..") {
    return undefined;
  }
  if (!NAME_PATTERN.test(shardId) || shardId === "." || shardId === "..") {
    return undefined;
  }
  const full = FULL_PATTERN.exec(file);
  if (full) {
    return {
      stream,
      shardId,
      sequenceNumber: full[1],
      final: full[2] !== undefined,
      encoding: full[3] !== undefined ? "zstd" : "none",
      kind: "full",
    };
  }
  const delta = DELTA_PATTERN.exec(file);
  if (!delta || compareSequenceNumbers(delta[2], delta[1]) >= 0) return undefined;
  return {
    stream,
    shardId,
    sequenceNumber: delta[1],
    final: false,
    encoding: delta[3] !== undefined ? "zstd" : "none",
    kind: "delta",
    baseSequenceNumber: delta[2],
  };
}

/**
 * The local path of a snapshot's plain SQLite file under a directory. It is built from the
 * validated parts, never from the raw key, so no key can point outside `dir`.
 *
 * @param dir The local directory.
 * @param parts The snapshot's parts.
 * @returns `<dir>/<stream>/<shardId>/<sequenceNumber>[.final].sqlite`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { localSnapshotFile } from "./snapshot_key.ts";
 * const file = localSnapshotFile("./local", {
 *   stream: "orders",
 *   shardId: "shardId-000000000000",
 *   sequenceNumber: "42",
 *   final: false,
 * });
 * assert.equal(file, "local/orders/shardId-000000000000/42.sqlite");
 * ```
 */
export function localSnapshotFile(
  dir: string,
  parts: Pick<
    SnapshotKeyParts,
    "stream" | "shardId" | "sequenceNumber" | "final"
  >,
): string {
  assertSequenceNumber(parts.sequenceNumber);
  return join(
    dir,
    assertName("stream", parts.stream),
    assertName("shard", parts.shardId),
    `${parts.sequenceNumber}${parts.final ? ".final" : ""}.sqlite`,
  );
}
