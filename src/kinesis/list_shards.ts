/**
 * Listing every shard of a stream, open and closed, with its lineage and hash key range.
 *
 * @module
 */
import {
  type KinesisClient,
  ListShardsCommand,
  type ListShardsCommandOutput,
} from "@aws-sdk/client-kinesis";
import type { AwsClient } from "../aws_client.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { HashKeyRange } from "./hash_key.ts";

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

/**
 * Lists every shard of a stream, following every page.
 *
 * @param client The Kinesis client (a `KinesisClient`).
 * @param stream The stream name.
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
export async function listStreamShards(client: AwsClient, stream: string): Promise<StreamShard[]> {
  const kinesis = client as KinesisClient;
  const shards: StreamShard[] = [];
  let token: string | undefined;
  do {
    let page: ListShardsCommandOutput;
    try {
      page = await kinesis.send(
        new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }),
      );
    } catch (error) {
      if ((error as Error).name === "ResourceNotFoundException") {
        throw new InvalidArgumentError(
          `Cannot list shards as the stream does not exist: current value is ${
            JSON.stringify(stream)
          }`,
          { cause: error },
        );
      }
      throw error;
    }
    for (const s of page.Shards ?? []) {
      shards.push({
        shardId: s.ShardId!,
        parentShards: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string =>
          Boolean(p)
        ),
        hashKeyRange: {
          startingHashKey: s.HashKeyRange?.StartingHashKey ?? "0",
          endingHashKey: s.HashKeyRange?.EndingHashKey ?? "0",
        },
        closed: Boolean(s.SequenceNumberRange?.EndingSequenceNumber),
      });
    }
    token = page.NextToken;
  } while (token);
  return shards;
}
