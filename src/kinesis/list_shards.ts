/**
 * Listing every shard of a stream, open and closed, with its lineage and hash key range: the one
 * ListShards paginator, used by the stream snapshotter and the shard reader alike.
 *
 * @module
 */
import type { Shard } from "@aws-sdk/client-kinesis";
import type { KinesisClientLike } from "../aws_client.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { HashKeyRange } from "./hash_key.ts";
import { kinesisSdk } from "./_sdk.ts";
import { DEFAULT_RETRY, isRetryable, type RetryOptions, withRetries } from "./retry.ts";

/** A shard of a stream as ListShards describes it. */
export interface StreamShard {
  /** The shard id. */
  shardId: string;
  /** The shards this one continues (one after a split, two after a merge). */
  parentShards: string[];
  /** The shard's hash key range. */
  hashKeyRange: HashKeyRange;
  /** True when the shard was closed by a reshard (it has an ending sequence number). */
  closed: boolean;
}

/** Options for {@linkcode listStreamShards}. */
export interface ListStreamShardsOptions {
  /** Aborts the listing. */
  signal?: AbortSignal;
  /** The retry budget of each ListShards call (throttling and transient errors), as for
   * `readShard`. Defaults to 10 attempts. */
  retry?: Partial<RetryOptions>;
}

/**
 * Lists every shard of a stream, following every page.
 *
 * @param client The Kinesis client (a `KinesisClient`).
 * @param stream The stream name.
 * @param options Aborts the listing.
 * @returns The shards, in the order Kinesis lists them (parents before children).
 * @throws {InvalidArgumentError} When the stream does not exist.
 *
 * @example Usage
 * ```ts ignore
 * import { KinesisClient } from "@aws-sdk/client-kinesis";
 * import { listStreamShards } from "./list_shards.ts";
 * const shards = await listStreamShards(new KinesisClient({}), "orders");
 * ```
 */
export async function listStreamShards(
  client: KinesisClientLike,
  stream: string,
  options?: ListStreamShardsOptions,
): Promise<StreamShard[]> {
  const shards: StreamShard[] = [];
  for await (const shard of pageShards(client, stream, options)) shards.push(shard);
  return shards;
}

/**
 * Finds one shard of a stream.
 *
 * @returns The shard, or `undefined` when the stream has no such shard.
 */
export async function findShard(
  client: KinesisClientLike,
  stream: string,
  shardId: string,
  options?: ListStreamShardsOptions,
): Promise<StreamShard | undefined> {
  for await (const shard of pageShards(client, stream, options)) {
    if (shard.shardId === shardId) return shard;
  }
  return undefined;
}

/**
 * Whether a failed listing may succeed when tried again later: not when the stream does not
 * exist, nor when no retry could help (no region or credentials, access denied).
 *
 * @param error What the listing threw.
 * @returns `false` when waiting changes nothing.
 */
export function listingMayRecover(error: unknown): boolean {
  return !(error instanceof InvalidArgumentError) && isRetryable(error);
}

/** Every shard of a stream, page after page (with `NextToken` alone, as ListShards demands). */
async function* pageShards(
  client: KinesisClientLike,
  stream: string,
  options?: ListStreamShardsOptions,
): AsyncGenerator<StreamShard> {
  const { ListShardsCommand } = await kinesisSdk();
  const retry = { ...DEFAULT_RETRY, ...options?.retry, signal: options?.signal };
  let token: string | undefined;
  do {
    const input = token ? { NextToken: token } : { StreamName: stream };
    const page = await withRetries(
      () => client.send(new ListShardsCommand(input), { abortSignal: options?.signal }),
      retry,
    ).catch((error) => {
      if ((error as Error).name !== "ResourceNotFoundException") throw error;
      throw new InvalidArgumentError(
        `Cannot list shards as the stream does not exist: current value is ${
          JSON.stringify(stream)
        }`,
        { cause: error },
      );
    });
    for (const shard of page.Shards ?? []) yield toStreamShard(shard);
    token = page.NextToken;
  } while (token);
}

function toStreamShard(s: Shard): StreamShard {
  return {
    shardId: s.ShardId!,
    parentShards: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => Boolean(p)),
    hashKeyRange: {
      startingHashKey: s.HashKeyRange?.StartingHashKey ?? "0",
      endingHashKey: s.HashKeyRange?.EndingHashKey ?? "0",
    },
    closed: Boolean(s.SequenceNumberRange?.EndingSequenceNumber),
  };
}
