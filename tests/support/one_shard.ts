/**
 * A one-shard stream on a shared kinesis-local with a file store, for tests that drive the
 * producer and the finder of that shard directly; and the log generator's "releases" those
 * tests publish with.
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ListShardsCommand } from "@aws-sdk/client-kinesis";
import {
  FileSnapshotStore,
  logGenerator,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type ShardSnapshotterOptions,
  type SnapshotGenerator,
} from "../../mod.ts";
import { makeRecords, putRecords } from "./data.ts";
import { createStream } from "./emulators.ts";
import { type Fixture, type KinesisEmulator, uniqueName } from "./fixture.ts";

/**
 * A new one-shard stream holding 20 records, a file store in its own directory, and makers of
 * producers and finders of that shard, each with its own local directory under it. Producers
 * keep every point a delta (`maxDeltas` 1,000, no restore bound) unless `extra` says otherwise.
 */
export async function oneShardStream(emulators: Fixture<KinesisEmulator>, name: string) {
  const { kinesis, writer, temp } = await emulators.get();
  const stream = uniqueName(name);
  await createStream(kinesis, stream, 1);
  const listed = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  const shardId = listed.Shards![0].ShardId!;
  const put = (n: number, seed: number) => putRecords(writer, stream, makeRecords(n, { seed }));
  await put(20, 1);
  const dir = join(temp, crypto.randomUUID());
  const store = new FileSnapshotStore({ root: join(dir, "store") });
  const producer = (
    localDir: string,
    generator: SnapshotGenerator,
    extra: Partial<ShardSnapshotterOptions> = {},
  ) =>
    new ShardSnapshotter({
      kinesis,
      store,
      stream,
      shardId,
      localPath: join(dir, localDir),
      generator,
      chain: { maxDeltas: 1_000, maxRestoreRatio: Infinity },
      ...extra,
    });
  const finder = (localDir: string) =>
    new ShardSnapshotFinder({ store, stream, shardId, localPath: join(dir, localDir) });
  return { stream, shardId, put, store, producer, finder };
}

/**
 * The log generator with a `config` table; `more` set, a newer release whose `onStart` also
 * runs `more` (adds a row, an index...).
 */
export function configRelease(more?: (db: DatabaseSync) => void): SnapshotGenerator {
  const log = logGenerator();
  return {
    onStart(db) {
      log.onStart!(db);
      db.exec("CREATE TABLE IF NOT EXISTS config (name TEXT PRIMARY KEY NOT NULL, value TEXT)");
      more?.(db);
    },
    onRecords: log.onRecords,
  };
}

/** The rows of `sql` in a database file, as plain objects. */
export function rowsOf(file: string, sql: string): unknown[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}
