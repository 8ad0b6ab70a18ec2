/**
 * `streambolt snapshot`: bring shards' snapshots up to date and publish them.
 *
 * @module
 */
import { ListShardsCommand, type ListShardsCommandOutput } from "@aws-sdk/client-kinesis";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SnapshotGenerator } from "../generator.ts";
import { kvGenerator } from "../generators/kv.ts";
import { logGenerator } from "../generators/log.ts";
import { ShardSnapshotter, type SnapshotProgress } from "../snapshotter.ts";
import { assertName } from "../snapshot.ts";
import { out, outJson, outTable, parse, required, UsageError, wholeNumber } from "./_common.ts";
import { makeKinesisClient } from "./_aws.ts";
import { cliLogger } from "./_log.ts";
import { openCliStore, snapshotJson, STORE_HELP, STORE_OPTIONS } from "./_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt snapshot --stream NAME --store URL [options]

Brings the latest snapshot of each shard up to date and publishes it. Without --shard, every
shard of the stream (open and closed) is snapshotted.

Options:
  --stream NAME               the Kinesis stream (required)
  --shard ID                  a shard to snapshot; repeat for several (default: all)
${STORE_HELP}
  --generator kv|log|PATH     kv: latest record per partition key; log: every record;
                              PATH: a module whose default export is a SnapshotGenerator
                              (default: kv)
  --done-lag MS               stop once at most MS behind the shard's tip (default: 0)
  --no-compact                skip handing free pages back before upload
  --encoding zstd|none        how snapshots are stored (default: zstd)
  --local-dir DIR             working directory (default: .streambolt-local)
  --json                      print the snapshots as JSON
  -q, --quiet                 no progress or info logs
  -v, --verbose               debug logs
  -h, --help                  this help`;

/** Loads the generator named by `--generator`. */
export async function loadGenerator(spec: string): Promise<SnapshotGenerator> {
  if (spec === "kv") return kvGenerator();
  if (spec === "log") return logGenerator();
  const path = resolve(spec);
  try {
    await Deno.stat(path);
  } catch {
    throw new UsageError(
      `Cannot load generator as it is not kv, log or an existing file: current value is ${
        JSON.stringify(spec)
      }`,
    );
  }
  const module = await import(pathToFileURL(path).href);
  let generator = module.default;
  if (typeof generator === "function") generator = await generator();
  if (typeof generator?.onRecords !== "function") {
    throw new UsageError(
      `Cannot use generator as its default export has no onRecords method: current value is ${
        JSON.stringify(spec)
      }`,
    );
  }
  return generator as SnapshotGenerator;
}

/** Every shard of a stream, open and closed, parents before children. */
export async function listShards(
  kinesis: ReturnType<typeof makeKinesisClient>,
  stream: string,
): Promise<string[]> {
  const shards: string[] = [];
  let token: string | undefined;
  do {
    let page: ListShardsCommandOutput;
    try {
      page = await kinesis.send(
        new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }),
      );
    } catch (error) {
      if ((error as Error).name === "ResourceNotFoundException") {
        throw new UsageError(
          `Cannot list shards as the stream does not exist: current value is ${
            JSON.stringify(stream)
          }`,
        );
      }
      throw error;
    }
    for (const shard of page.Shards ?? []) shards.push(shard.ShardId!);
    token = page.NextToken;
  } while (token);
  return shards;
}

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const { values } = parse("snapshot", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    shard: { type: "string", multiple: true },
    generator: { type: "string" },
    "done-lag": { type: "string" },
    "no-compact": { type: "boolean" },
    encoding: { type: "string" },
    "local-dir": { type: "string" },
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  const stream = assertName("stream", required(values, "stream", "snapshot"));
  const doneLagMs = wholeNumber("done-lag", values["done-lag"] as string | undefined, 0) ?? 0;
  const encoding = (values.encoding as string | undefined) ?? "zstd";
  if (encoding !== "zstd" && encoding !== "none") {
    throw new UsageError(
      `Cannot use --encoding as it must be zstd or none: current value is ${
        JSON.stringify(encoding)
      }`,
    );
  }
  const requested = ((values.shard as string[] | undefined) ?? []).map((s) =>
    assertName("shard", s)
  );
  const store = await openCliStore(values, "snapshot");
  const generator = await loadGenerator((values.generator as string | undefined) ?? "kv");
  const logger = cliLogger({ quiet: values.quiet as boolean, verbose: values.verbose as boolean });
  const kinesis = makeKinesisClient();
  try {
    const all = await listShards(kinesis, stream);
    for (const shard of requested) {
      if (!all.includes(shard)) {
        throw new UsageError(
          `Cannot snapshot shard as the stream has no such shard: current value is ${
            JSON.stringify(shard)
          }`,
        );
      }
    }
    const shards = requested.length > 0 ? requested : all;
    const results = [];
    for (const shardId of shards) {
      let last: SnapshotProgress | undefined;
      const snapshot = await new ShardSnapshotter({
        kinesis,
        store,
        stream,
        shardId,
        localPath: (values["local-dir"] as string | undefined) ?? ".streambolt-local",
        generator,
        doneLagMs,
        compact: !values["no-compact"],
        encoding,
        logger,
        onProgress: (p) => {
          last = p;
          logger.progress(p);
        },
      }).snapshotShard();
      logger.endProgress();
      results.push({
        ...snapshotJson(snapshot),
        published: last?.phase === "done",
        recordsApplied: last?.recordsApplied ?? 0,
      });
      logger.info(last?.phase === "done" ? "published snapshot" : "snapshot unchanged", {
        shard: shardId,
        key: snapshot.key,
        records: last?.recordsApplied ?? 0,
      });
    }
    if (values.json) outJson(results);
    else {
      outTable(
        ["SHARD", "SEQUENCE", "FINAL", "APPLIED", "PUBLISHED", "KEY"],
        results.map((r) => [
          String(r.shardId),
          String(r.sequenceNumber),
          r.final ? "yes" : "no",
          String(r.recordsApplied),
          r.published ? "yes" : "no",
          String(r.key),
        ]),
      );
    }
    return 0;
  } finally {
    logger.endProgress();
    kinesis.destroy();
  }
}
