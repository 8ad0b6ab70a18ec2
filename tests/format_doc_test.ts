/**
 * docs/format.md is complete: a point restored by following it alone — raw file reads of the
 * file store, node:sqlite (with its session extension), node:zlib and node:crypto, no
 * streambolt restore code — equals what the producer published and what streambolt's own
 * consumer restores. streambolt only produces the chain here (a full snapshot and deltas that
 * insert, update and delete rows, from a scripted record source).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { constants, DatabaseSync } from "node:sqlite";
import zlib from "node:zlib";
import {
  FileSnapshotStore,
  type KinesisClientLike,
  type ShardPage,
  type ShardRecord,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type SnapshotGenerator,
} from "../mod.ts";

const STREAM = "format-doc";
const SHARD = "shardId-000000000007";

// ---------------------------------------------------------------------------------------------
// The reader: docs/format.md, step by step. Nothing below imports streambolt.
// ---------------------------------------------------------------------------------------------

const NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const SEQ = "(0|[1-9][0-9]{0,127})";
const FULL = new RegExp(`^${SEQ}(\\.final)?\\.sqlite(\\.zst)?$`);
const DELTA = new RegExp(`^${SEQ}\\.from-${SEQ}\\.delta(\\.zst)?$`);
const MAGIC = new TextEncoder().encode("streambolt-delta 1\n");

interface SpecObject {
  key: string;
  file: string;
  kind: "full" | "delta";
  seq: bigint;
  final: boolean;
  base?: bigint;
  zst: boolean;
}

/** "Keys": parse one key; undefined for every key a reader must ignore. */
function parseKey(key: string, file: string): SpecObject | undefined {
  const parts = key.split("/");
  if (parts.length !== 3) return undefined;
  const [stream, shard, name] = parts;
  for (const segment of [stream, shard]) {
    if (!NAME.test(segment) || segment === "." || segment === "..") return undefined;
  }
  const full = FULL.exec(name);
  if (full) {
    return { key, file, kind: "full", seq: BigInt(full[1]), final: !!full[2], zst: !!full[3] };
  }
  const delta = DELTA.exec(name);
  if (!delta || BigInt(delta[2]) >= BigInt(delta[1])) return undefined;
  return {
    key,
    file,
    kind: "delta",
    seq: BigInt(delta[1]),
    base: BigInt(delta[2]),
    final: false,
    zst: !!delta[3],
  };
}

/** "Publishing": a file-store object is published once its `.meta.json` exists. */
function listShard(root: string, stream: string, shard: string): SpecObject[] {
  const dir = join(root, stream, shard);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  const found: SpecObject[] = [];
  for (const name of names) {
    if (name.startsWith(".") || name.endsWith(".meta.json")) continue;
    if (!names.includes(`${name}.meta.json`)) continue;
    const parsed = parseKey(`${stream}/${shard}/${name}`, join(dir, name));
    if (parsed) found.push(parsed);
  }
  return found.sort(order);
}

/** Oldest first: sequence number as an integer, non-final before final, delta before full. */
function order(a: SpecObject, b: SpecObject): number {
  return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : Number(a.final) - Number(b.final) ||
    Number(a.kind === "full") - Number(b.kind === "full");
}

const pointId = (seq: bigint, final: boolean) => `${seq}${final ? ".final" : ""}`;

/** "Restoring a point", steps 2 and 3: the newest restorable point and a chain (fewest objects). */
function planChain(objects: SpecObject[]): SpecObject[] | undefined {
  const chains = new Map<string, SpecObject[]>();
  for (const o of objects) {
    const before = o.kind === "full" ? [] : chains.get(pointId(o.base!, false));
    if (!before) continue; // a gap: never applied
    const chain = [...before, o];
    const id = pointId(o.seq, o.final);
    if (!chains.has(id) || chains.get(id)!.length > chain.length) chains.set(id, chain);
  }
  const newest = [...objects].reverse().find((o) => chains.has(pointId(o.seq, o.final)));
  return newest && chains.get(pointId(newest.seq, newest.final));
}

/** "Object metadata", "Full snapshots" 1-2, "Deltas" 1-2: checked bytes, decoded. */
function fetchVerified(o: SpecObject): Uint8Array {
  const stored = Deno.readFileSync(o.file);
  const metadata = JSON.parse(Deno.readTextFileSync(`${o.file}.meta.json`));
  if (typeof metadata.sha256 !== "string") throw new Error(`${o.key}: no sha256`);
  const actual = createHash("sha256").update(stored).digest("hex");
  if (actual !== metadata.sha256) throw new Error(`${o.key}: SHA-256 does not match`);
  return o.zst ? new Uint8Array(zlib.zstdDecompressSync(stored)) : stored;
}

type MetaRow = { stream: string; shard_id: string; sequence_number: string; final: number };

function metaRow(db: DatabaseSync): MetaRow {
  return db.prepare("SELECT * FROM streambolt_meta WHERE id = 1").get() as unknown as MetaRow;
}

/** "Deltas": a string escaped as the schema fingerprint's rules say (written out, not JSON.stringify). */
function specString(text: string): string {
  const named: Record<string, string> = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
  };
  let out = '"';
  for (const c of text) {
    if (named[c]) out += named[c];
    else if (c < " ") out += `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
    else out += c;
  }
  return out + '"';
}

/** "Deltas": the schema fingerprint. */
function schemaFingerprint(db: DatabaseSync): string {
  const rows = db.prepare(
    `SELECT type, name, tbl_name, sql FROM sqlite_master
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name`,
  ).all();
  const field = (v: unknown) => v === null ? "null" : specString(String(v));
  const json = `[${
    rows.map((r) =>
      `{"type":${field(r.type)},"name":${field(r.name)},"tbl_name":${field(r.tbl_name)},"sql":${
        field(r.sql)
      }}`
    ).join(",")
  }]`;
  return createHash("sha256").update(new TextEncoder().encode(json)).digest("hex");
}

/** "Deltas", steps 2-5. */
function applyDelta(db: DatabaseSync, o: SpecObject, raw: Uint8Array): void {
  if (!MAGIC.every((b, i) => raw[i] === b)) throw new Error(`${o.key}: not a delta`);
  const end = raw.indexOf(0x0a, MAGIC.length);
  const header = JSON.parse(new TextDecoder().decode(raw.subarray(MAGIC.length, end)));
  const [stream, shard] = o.key.split("/");
  assert.deepEqual(
    [header.stream, header.shardId, header.sequenceNumber, header.baseSequenceNumber],
    [stream, shard, String(o.seq), String(o.base)],
  );
  const before = metaRow(db);
  assert.deepEqual([before.stream, before.shard_id], [stream, shard]);
  assert.equal(before.sequence_number, header.baseSequenceNumber);
  assert.equal(schemaFingerprint(db), header.schema);
  db.exec("BEGIN IMMEDIATE");
  try {
    const applied = db.applyChangeset(raw.subarray(end + 1), {
      onConflict: () => constants.SQLITE_CHANGESET_ABORT,
    });
    assert.ok(applied, `${o.key}: a change conflicts`);
    assert.equal(metaRow(db).sequence_number, header.sequenceNumber);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/** "Restoring a point", steps 4-5, into `out`. Returns the point restored. */
function restoreFollowingSpec(chain: SpecObject[], out: string): string {
  const [full, ...deltas] = chain;
  assert.equal(full.kind, "full");
  Deno.writeFileSync(out, fetchVerified(full));
  const db = new DatabaseSync(out);
  try {
    const meta = metaRow(db);
    assert.deepEqual(
      [meta.stream, meta.shard_id, meta.sequence_number, meta.final === 1],
      [...full.key.split("/").slice(0, 2), String(full.seq), full.final],
    );
    for (const delta of deltas) applyDelta(db, delta, fetchVerified(delta));
    const last = chain.at(-1)!;
    const reached = metaRow(db);
    assert.deepEqual([reached.sequence_number, reached.final === 1], [
      String(last.seq),
      last.final,
    ]);
    return reached.sequence_number;
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The producer side: streambolt publishes a chain from scripted records.
// ---------------------------------------------------------------------------------------------

/** A generator whose records put or delete items: deltas with inserts, updates and deletes. */
const items: SnapshotGenerator = {
  onStart(db) {
    // A newline, a tab and a non-ASCII default in the schema: the fingerprint's JSON escaping.
    db.exec(`CREATE TABLE IF NOT EXISTS items (
\tkey TEXT PRIMARY KEY NOT NULL,
\tvalue TEXT NOT NULL DEFAULT 'é'
)`);
  },
  onRecords(db, batch) {
    const put = db.prepare(
      "INSERT INTO items VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    const del = db.prepare("DELETE FROM items WHERE key = ?");
    for (const r of batch.records) {
      const { op, key, value } = JSON.parse(new TextDecoder().decode(r.data));
      if (op === "del") del.run(key);
      else put.run(key, value);
    }
  },
};

/** Sequence numbers past 2^64, so a reader comparing them as doubles or strings would fail. */
const seqOf = (i: number) => String(10n ** 50n + BigInt(i) * 7n);

function record(i: number): ShardRecord {
  const key = `item-${i % 9}`;
  const op = i > 20 && i % 5 === 0 ? "del" : "put";
  const data = new TextEncoder().encode(JSON.stringify({ op, key, value: `v${i}\n"é"` }));
  return {
    sequenceNumber: seqOf(i),
    partitionKey: key,
    data,
    approximateArrivalTimestamp: new Date(),
  };
}

/** The state after records 1..n, as the model a restored point must equal. */
function model(n: number): Array<{ key: string; value: string }> {
  const state = new Map<string, string>();
  for (let i = 1; i <= n; i++) {
    const { op, key, value } = JSON.parse(new TextDecoder().decode(record(i).data));
    if (op === "del") state.delete(key);
    else state.set(key, value);
  }
  return [...state].sort(([a], [b]) => a < b ? -1 : 1).map(([key, value]) => ({ key, value }));
}

const NO_KINESIS: KinesisClientLike = {
  send: () => Promise.reject(new Error("no Kinesis in this test")),
  config: { region: "none" },
};

/** Publishes the point after records 1..n (a delta on the previous point after the first). */
async function publish(root: string, work: string, n: number): Promise<void> {
  const source = async function* (_: unknown, options: { after: string }) {
    const records = Array.from({ length: n }, (_, i) => record(i + 1))
      .filter((r) => BigInt(r.sequenceNumber) > BigInt(options.after));
    for (let i = 0; i < records.length; i += 4) {
      const page: ShardPage = {
        shardId: SHARD,
        records: records.slice(i, i + 4),
        millisBehindLatest: 0,
        fullPage: false,
        closed: false,
        childShards: [],
      };
      yield page;
    }
  };
  await new ShardSnapshotter({
    kinesis: NO_KINESIS,
    store: new FileSnapshotStore({ root }),
    stream: STREAM,
    shardId: SHARD,
    localPath: work,
    generator: items,
    source,
    // A small state gets a full at every point by default; this keeps one chain.
    chain: { maxDeltas: 20, maxRestoreRatio: 1_000_000 },
  }).snapshotShard();
}

function rowsOf(file: string): unknown[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT key, value FROM items ORDER BY key").all()
      .map((r) => ({ key: r.key, value: r.value }));
  } finally {
    db.close();
  }
}

Deno.test("a point restored by following docs/format.md alone equals the published state and streambolt's own restore", async () => {
  const temp = await Deno.makeTempDir({ prefix: "streambolt-format-doc-" });
  try {
    const root = join(temp, "store");
    for (const n of [12, 23, 31]) await publish(root, join(temp, "work"), n);

    const objects = listShard(root, STREAM, SHARD);
    const chain = planChain(objects)!;
    assert.deepEqual(chain.map((o) => o.kind), ["full", "delta", "delta"]);

    const out = join(temp, "restored.sqlite");
    assert.equal(restoreFollowingSpec(chain, out), seqOf(31));
    assert.deepEqual(rowsOf(out), model(31));

    const finder = new ShardSnapshotFinder({
      store: new FileSnapshotStore({ root }),
      stream: STREAM,
      shardId: SHARD,
      localPath: join(temp, "consumer"),
    });
    const theirs = await finder.downloadLatestSnapshot();
    assert.equal(theirs?.sequenceNumber, seqOf(31));
    assert.deepEqual(rowsOf(out), rowsOf(theirs!.localFile));
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
});

Deno.test("following docs/format.md, a damaged delta is refused and the point before it restores", async () => {
  const temp = await Deno.makeTempDir({ prefix: "streambolt-format-doc-" });
  try {
    const root = join(temp, "store");
    for (const n of [12, 23, 31]) await publish(root, join(temp, "work"), n);
    const newest = planChain(listShard(root, STREAM, SHARD))!.at(-1)!;
    const bytes = Deno.readFileSync(newest.file);
    bytes[bytes.length >> 1] ^= 0xff;
    Deno.writeFileSync(newest.file, bytes);

    const out = join(temp, "restored.sqlite");
    assert.throws(
      () => restoreFollowingSpec(planChain(listShard(root, STREAM, SHARD))!, out),
      /SHA-256 does not match/,
    );
    const without = listShard(root, STREAM, SHARD).filter((o) => o.key !== newest.key);
    assert.equal(restoreFollowingSpec(planChain(without)!, out), seqOf(23));
    assert.deepEqual(rowsOf(out), model(23));
  } finally {
    await Deno.remove(temp, { recursive: true });
  }
});
