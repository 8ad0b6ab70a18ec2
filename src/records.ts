/**
 * Records and pages as streambolt hands them around: plain data types with no behaviour and no
 * imports, so the snapshot database, the generators and the metadata can use them without
 * depending on the Kinesis reader.
 *
 * @module
 */

/** One Kinesis record as handed to a generator. */
export interface ShardRecord {
  /** The record's sequence number, decimal. */
  sequenceNumber: string;
  /** The partition key the producer gave. */
  partitionKey: string;
  /** The payload. */
  data: Uint8Array;
  /** When Kinesis received the record. */
  approximateArrivalTimestamp?: Date;
  /** For a user record taken out of a KPL aggregate: its index inside the aggregate. */
  subSequenceNumber?: number;
  /** For a user record taken out of a KPL aggregate: its explicit hash key, if any. */
  explicitHashKey?: string;
}

/** One page of records from a shard, as handed to a generator. */
export interface RecordBatch {
  /** The shard the records come from. */
  shardId: string;
  /** The records, in sequence order. */
  records: ShardRecord[];
  /** How far behind the newest record of the shard this page ends, in ms. */
  millisBehindLatest: number;
}

/** A child shard named by the final page of a closed shard. */
export interface ChildShard {
  /** The child's shard id. */
  shardId: string;
  /** The child's parents (one after a split, two after a merge). */
  parentShards: string[];
  /** The child's hash key range, decimal. */
  hashKeyRange?: { startingHashKey: string; endingHashKey: string };
}

/** One page read from a shard. */
export interface ShardPage extends RecordBatch {
  /** True when the page held as many records as the request allowed: more are waiting. */
  fullPage: boolean;
  /** True when the shard is closed and this is its last page. */
  closed: boolean;
  /** On the last page of a closed shard, the shards that continue it. */
  childShards: ChildShard[];
}
