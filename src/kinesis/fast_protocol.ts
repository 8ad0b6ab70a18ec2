/**
 * A Kinesis client protocol that reads successful GetRecords responses without the SDK's
 * schema walk: the one change the SDK's own `protocol` option allows on the per-record cost.
 *
 * @module
 */
import { AwsJson1_1Protocol } from "@aws-sdk/core/protocols";

type Deserialize = AwsJson1_1Protocol["deserializeResponse"];
type OperationSchema = Parameters<Deserialize>[0];
type Context = Parameters<Deserialize>[1];
type HttpResponse = Parameters<Deserialize>[2];
type MetadataBearer = Awaited<ReturnType<Deserialize>>;

/** A parsed JSON object. */
type Json = Record<string, unknown>;

/** Thrown inside the fast path when a body is not the shape it reads; the SDK's path takes it. */
const IRREGULAR = Symbol("irregular GetRecords body");

// Keeps a byte-order mark, so JSON.parse refuses it exactly as the SDK's Buffer parse does.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The Kinesis client's JSON 1.1 protocol (the SDK's default), except that a successful (2xx)
 * GetRecords response is read directly: the body is parsed with `JSON.parse`, each record's
 * `Data` decoded with `Uint8Array.fromBase64` and its `ApproximateArrivalTimestamp` (epoch
 * seconds) made a `Date`. The output is the SDK's own shape, field by field, `$metadata`
 * included. Every other response (other operations, errors) is the SDK's, as are signing,
 * credentials, endpoints, retries and error types: this class only replaces the deserializer of
 * one successful response. A body that is not the shape GetRecords returns (say, a record whose
 * `Data` is not a string) is handed to the SDK's deserializer, which reads or refuses it as it
 * always does.
 *
 * Pass the class (the SDK constructs it with its own protocol settings) as the client's
 * `protocol`:
 *
 * @example Reading a shard with the fast protocol
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { KinesisFastProtocol } from "./fast_protocol.ts";
 *
 * const kinesis = new KinesisClient({ protocol: KinesisFastProtocol, maxAttempts: 1 });
 * ```
 */
export class KinesisFastProtocol extends AwsJson1_1Protocol {
  /** Reads a successful GetRecords response directly; passes every other one to the SDK. */
  override async deserializeResponse<Output extends MetadataBearer>(
    operationSchema: OperationSchema,
    context: Context,
    response: HttpResponse,
  ): Promise<Output> {
    const status = response.statusCode;
    if (operationSchema.name !== "GetRecords" || status < 200 || status >= 300) {
      return super.deserializeResponse<Output>(operationSchema, context, response);
    }
    lowerCaseHeaders(response);
    const bytes = await collectBody(response.body, context);
    let output: Json = {};
    if (bytes.byteLength > 0) {
      try {
        output = getRecordsOutput(JSON.parse(utf8.decode(bytes)));
      } catch (error) {
        if (error !== IRREGULAR) throw error;
        const schema = operationSchema.output;
        const outputSchema = typeof schema === "function" ? schema() : schema;
        output = await this.deserializer.read(outputSchema, bytes) as Json;
      }
    }
    output.$metadata = this.deserializeMetadata(response);
    return output as Output;
  }
}

/** The SDK lower-cases the headers of a successful response in place; so does this path. */
function lowerCaseHeaders(response: HttpResponse): void {
  for (const name of Object.keys(response.headers)) {
    const value = response.headers[name];
    delete response.headers[name];
    response.headers[name.toLowerCase()] = value;
  }
}

/** The whole body's bytes, collected by the client's own stream collector. */
async function collectBody(body: unknown, context: Context): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  if (!body) return new Uint8Array();
  return await context.streamCollector(body);
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** GetRecordsOutput's members, in the SDK's order, each only when present and not null. */
function getRecordsOutput(body: unknown): Json {
  // A `__type` member makes the SDK keep unknown members too: its path handles that.
  if (!isObject(body) || typeof body.__type === "string") throw IRREGULAR;
  const out: Json = {};
  if (body.Records != null) out.Records = records(body.Records);
  if (body.NextShardIterator != null) out.NextShardIterator = body.NextShardIterator;
  const behind = body.MillisBehindLatest;
  if (behind != null) {
    if (typeof behind === "string") throw IRREGULAR;
    out.MillisBehindLatest = behind;
  }
  if (body.ChildShards != null) out.ChildShards = childShards(body.ChildShards);
  return out;
}

/**
 * The records, each read in place as the SDK reads a list. Their payloads are decoded into one
 * buffer for the page, each record's `Data` a view of its part: one allocation a page rather
 * than one a record (the SDK's own decoder also returns views of shared buffers).
 */
function records(list: unknown): unknown[] {
  if (!Array.isArray(list)) throw IRREGULAR;
  let total = 0;
  for (const value of list) {
    if (!isObject(value) || typeof value.__type === "string") throw IRREGULAR;
    if (value.Data != null) total += decodedLength(value.Data);
  }
  const payloads = new Uint8Array(total);
  let offset = 0;
  for (let i = 0; i < list.length; i++) {
    const out = record(list[i], payloads, offset);
    offset += out.Data?.byteLength ?? 0;
    list[i] = out;
  }
  return list;
}

/** The bytes a record's base64 `Data` holds; the SDK refuses it unless its padding is there. */
function decodedLength(data: unknown): number {
  if (typeof data !== "string" || data.length % 4 !== 0) throw IRREGULAR;
  const padding = data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0;
  return (data.length / 4) * 3 - padding;
}

/** One record's members, in the SDK's order; its payload decoded into `payloads` at `offset`. */
function record(value: Json, payloads: Uint8Array, offset: number): Json & { Data?: Uint8Array } {
  const out: Json & { Data?: Uint8Array } = {};
  if (value.SequenceNumber != null) out.SequenceNumber = value.SequenceNumber;
  const data = value.Data as string | null | undefined;
  if (data != null) {
    const bytes = payloads.subarray(offset, offset + decodedLength(data));
    out.Data = decodeInto(data, bytes);
  }
  const arrival = value.ApproximateArrivalTimestamp;
  if (arrival != null) {
    if (typeof arrival !== "number" || !Number.isFinite(arrival)) throw IRREGULAR;
    out.ApproximateArrivalTimestamp = new Date(Math.round(arrival * 1000));
  }
  if (value.PartitionKey != null) out.PartitionKey = value.PartitionKey;
  if (value.EncryptionType != null) out.EncryptionType = value.EncryptionType;
  return out;
}

/** `bytes`, filled from `data`; anything but exactly its base64 is left to the SDK's decoder. */
function decodeInto(data: string, bytes: Uint8Array): Uint8Array {
  let result: { read: number; written: number };
  try {
    result = bytes.setFromBase64(data);
  } catch {
    throw IRREGULAR;
  }
  if (result.read !== data.length || result.written !== bytes.byteLength) throw IRREGULAR;
  return bytes;
}

/** The child shards, read in place, their members in the SDK's order. */
function childShards(list: unknown): unknown[] {
  if (!Array.isArray(list)) throw IRREGULAR;
  for (let i = 0; i < list.length; i++) {
    const child = list[i];
    if (!isObject(child) || typeof child.__type === "string") throw IRREGULAR;
    const out: Json = {};
    if (child.ShardId != null) out.ShardId = child.ShardId;
    if (child.ParentShards != null) out.ParentShards = child.ParentShards;
    const range = child.HashKeyRange;
    if (range != null) {
      if (!isObject(range) || typeof range.__type === "string") throw IRREGULAR;
      const keys: Json = {};
      if (range.StartingHashKey != null) keys.StartingHashKey = range.StartingHashKey;
      if (range.EndingHashKey != null) keys.EndingHashKey = range.EndingHashKey;
      out.HashKeyRange = keys;
    }
    list[i] = out;
  }
  return list;
}
