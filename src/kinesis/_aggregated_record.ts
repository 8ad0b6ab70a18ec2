/**
 * A decoder of the KPL's `AggregatedRecord` message (protocol buffers, proto2), written for
 * its one schema so that reading a shard does not load a protobuf library: importing one
 * cost a CLI run about as much CPU as starting the runtime, for records most streams never
 * carry.
 *
 * ```proto
 * message AggregatedRecord {
 *   repeated string partition_key_table = 1;
 *   repeated string explicit_hash_key_table = 2;
 *   repeated Record records = 3;
 * }
 * message Tag { required string key = 1; optional string value = 2; }
 * message Record {
 *   required uint64 partition_key_index = 1;
 *   optional uint64 explicit_hash_key_index = 2;
 *   required bytes data = 3;
 *   repeated Tag tags = 4;
 * }
 * ```
 *
 * @module
 */

/** One user record of an aggregate, as stored in it. */
export interface AggregatedUserRecord {
  /** Index into the partition key table. */
  partitionKeyIndex: number;
  /** Index into the explicit hash key table, when the record has one. */
  explicitHashKeyIndex?: number;
  /** The user record's data. */
  data: Uint8Array;
}

/** A decoded `AggregatedRecord`. */
export interface AggregatedMessage {
  /** The partition keys the records point into. */
  partitionKeys: string[];
  /** The explicit hash keys the records point into. */
  explicitHashKeys: string[];
  /** The user records. */
  records: AggregatedUserRecord[];
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const utf8 = new TextDecoder();

/** Thrown for bytes that are not a well-formed message of the schema. */
class MalformedMessageError extends Error {
  override name = "MalformedMessageError";
}

/** A cursor over protobuf wire bytes. */
class Reader {
  pos: number;

  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** An unsigned varint, as a number (exact up to 2^53). */
  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new MalformedMessageError("truncated varint");
      const byte = this.buf[this.pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new MalformedMessageError("varint longer than 10 bytes");
  }

  /** The bounds of a length-delimited field's value, skipping over it. */
  span(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) throw new MalformedMessageError("truncated field");
    this.pos = start + length;
    return [start, this.pos];
  }

  /** A field's key: its number and wire type. */
  key(): [number, number] {
    const key = this.varint();
    return [Math.floor(key / 8), key % 8];
  }

  /** Skips a field of an unknown number. */
  skip(wireType: number): void {
    if (wireType === VARINT) this.varint();
    else if (wireType === LENGTH_DELIMITED) this.span();
    else if (wireType === FIXED64 || wireType === FIXED32) {
      this.pos += wireType === FIXED64 ? 8 : 4;
      if (this.pos > this.end) throw new MalformedMessageError("truncated fixed field");
    } else throw new MalformedMessageError(`unsupported wire type ${wireType}`);
  }
}

function expect(wireType: number, wanted: number): void {
  if (wireType !== wanted) throw new MalformedMessageError(`wire type ${wireType}`);
}

function decodeTag(r: Reader): void {
  let hasKey = false;
  while (!r.done) {
    const [field, wireType] = r.key();
    if (field === 1) {
      expect(wireType, LENGTH_DELIMITED);
      hasKey = true;
    }
    r.skip(wireType);
  }
  if (!hasKey) throw new MalformedMessageError("tag without key");
}

function decodeRecord(r: Reader): AggregatedUserRecord {
  let partitionKeyIndex: number | undefined;
  let explicitHashKeyIndex: number | undefined;
  let data: Uint8Array | undefined;
  while (!r.done) {
    const [field, wireType] = r.key();
    if (field === 1 || field === 2) {
      expect(wireType, VARINT);
      if (field === 1) partitionKeyIndex = r.varint();
      else explicitHashKeyIndex = r.varint();
    } else if (field === 3 || field === 4) {
      expect(wireType, LENGTH_DELIMITED);
      const [start, end] = r.span();
      if (field === 3) data = r.buf.slice(start, end);
      else decodeTag(new Reader(r.buf, start, end));
    } else r.skip(wireType);
  }
  if (partitionKeyIndex === undefined || data === undefined) {
    throw new MalformedMessageError("record without partition key index or data");
  }
  return explicitHashKeyIndex === undefined
    ? { partitionKeyIndex, data }
    : { partitionKeyIndex, explicitHashKeyIndex, data };
}

/**
 * Decodes an `AggregatedRecord` (the bytes between the KPL's magic and its MD5 trailer).
 *
 * @param body The message's bytes.
 * @returns The message, or undefined when the bytes are not a well-formed one.
 */
export function decodeAggregatedRecord(body: Uint8Array): AggregatedMessage | undefined {
  const message: AggregatedMessage = { partitionKeys: [], explicitHashKeys: [], records: [] };
  const r = new Reader(body);
  try {
    while (!r.done) {
      const [field, wireType] = r.key();
      if (field < 1 || field > 3) {
        r.skip(wireType);
        continue;
      }
      expect(wireType, LENGTH_DELIMITED);
      const [start, end] = r.span();
      if (field === 3) message.records.push(decodeRecord(new Reader(body, start, end)));
      else {
        const text = utf8.decode(body.subarray(start, end));
        (field === 1 ? message.partitionKeys : message.explicitHashKeys).push(text);
      }
    }
  } catch (error) {
    if (error instanceof MalformedMessageError) return undefined;
    throw error;
  }
  return message;
}
