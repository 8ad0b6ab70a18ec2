/**
 * `streambolt inspect`: look inside snapshot files, read-only. Loads no AWS code.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { encodeBase64 } from "../_base64.ts";
import { readSnapshotMetadata } from "../metadata.ts";
import { out, outJson, outTable, parse, UsageError, wholeNumber } from "./_common.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt inspect FILE... [options]

Shows a snapshot's metadata and its tables with row counts, or, with an option, one query.
Files are opened read-only: nothing can change them, whatever the SQL says.

Options:
  --count TABLE               the number of rows in TABLE
  --keys PREFIX               keys of --table starting with PREFIX ("" for all)
  --get KEY                   the row of --table whose key is KEY
  --table NAME                the table for --keys and --get (default: kv); its key is its
                              first primary-key column
  --sql QUERY                 run a read-only SQL query
  --limit N                   at most N rows for --keys and --sql (default: 100)
  --json                      print JSON
  --log-format text|json      stderr as text (default) or one JSON object per line
  -h, --help                  this help`;

type Row = Record<string, unknown>;

function cell(value: unknown): string {
  if (value instanceof Uint8Array) {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(value);
    } catch {
      return `base64:${encodeBase64(value)}`;
    }
  }
  if (value === null || value === undefined) return "NULL";
  return String(value);
}

function jsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return cell(value);
  if (typeof value === "bigint") return value.toString();
  return value;
}

function printRows(rows: Row[], json: boolean): void {
  if (json) {
    outJson(
      rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, jsonValue(v)]))),
    );
    return;
  }
  const headers = rows.length > 0 ? Object.keys(rows[0]) : [];
  outTable(headers, rows.map((r) => headers.map((h) => truncate(cell(r[h])))));
}

function truncate(text: string): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length > 100 ? flat.slice(0, 97) + "..." : flat;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function tables(db: DatabaseSync): string[] {
  return (db.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
  ).all() as Array<{ name: string }>).map((r) => r.name);
}

function keyColumn(db: DatabaseSync, table: string, file: string): string {
  if (!tables(db).includes(table)) {
    throw new UsageError(
      `Cannot use table as ${file} has no such table: current value is ${JSON.stringify(table)}`,
    );
  }
  const columns = db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<
    { name: string; pk: number }
  >;
  const key = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk)[0] ?? columns[0];
  return key.name;
}

function open(file: string): DatabaseSync {
  try {
    const info = Deno.statSync(file);
    if (!info.isFile) throw new Error("not a file");
  } catch (error) {
    throw new UsageError(
      `Cannot inspect file as it cannot be read (${(error as Error).message}): current value is ${
        JSON.stringify(file)
      }`,
    );
  }
  try {
    const db = new DatabaseSync(file, { readOnly: true });
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return db;
  } catch (error) {
    throw new UsageError(
      `Cannot inspect file as it is not a SQLite database (${
        (error as Error).message
      }): current value is ${JSON.stringify(file)}`,
    );
  }
}

/** What one `inspect` run asks for, shared by every file it looks at. */
interface Request {
  values: Record<string, unknown>;
  /** The table for --keys and --get. */
  table: string;
  limit: number;
  json: boolean;
  /** Whether more than one file was given (text output then names each file). */
  many: boolean;
}

/** `--count TABLE`: the table's row count. */
function countRows(db: DatabaseSync, file: string, request: Request): Row[] {
  const name = request.values.count as string;
  keyColumn(db, name, file);
  const { n } = db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(name)}`).get() as {
    n: number;
  };
  if (request.json) return [{ file, table: name, count: n }];
  out(request.many ? `${file}\t${n}` : String(n));
  return [];
}

/** `--keys PREFIX`: the keys of the table that start with PREFIX. */
function listKeys(db: DatabaseSync, file: string, request: Request): Row[] {
  const { table } = request;
  const key = keyColumn(db, table, file);
  const prefix = request.values.keys as string;
  const rows = db.prepare(
    `SELECT ${quoteIdent(key)} AS key FROM ${quoteIdent(table)}
     WHERE substr(${quoteIdent(key)}, 1, ?) = ? ORDER BY 1 LIMIT ?`,
  ).all(prefix.length, prefix, request.limit) as Row[];
  if (request.json) return rows.map((r) => ({ file, key: jsonValue(r.key) }));
  for (const r of rows) out(cell(r.key));
  return [];
}

/** `--get KEY`: the row of the table whose key is KEY. */
function getRow(db: DatabaseSync, file: string, request: Request): Row[] {
  const { table } = request;
  const key = keyColumn(db, table, file);
  const row = db.prepare(
    `SELECT * FROM ${quoteIdent(table)} WHERE ${quoteIdent(key)} = ?`,
  ).get(request.values.get as string) as Row | undefined;
  if (!row) {
    throw new Error(
      `Cannot get key as ${file} table ${table} has no such key: current value is ${
        JSON.stringify(request.values.get)
      }`,
    );
  }
  if (request.json) return [{ file, ...row }];
  for (const [k, v] of Object.entries(row)) out(`${k}\t${cell(v)}`);
  return [];
}

/** `--sql QUERY`: at most --limit rows of a read-only query. */
function runQuery(db: DatabaseSync, file: string, request: Request): Row[] {
  const rows: Row[] = [];
  try {
    const statement = db.prepare(request.values.sql as string);
    for (const row of statement.iterate() as Iterable<Row>) {
      rows.push(row);
      if (rows.length >= request.limit) break;
    }
    // iterate() yields nothing, silently, when a step fails (such as a write refused by
    // the read-only connection); all() reports the error, and costs nothing when empty.
    if (rows.length === 0) statement.all();
  } catch (error) {
    throw new Error(
      `Cannot run query on ${file} (${(error as Error).message}): current value is ${
        JSON.stringify(request.values.sql)
      }`,
    );
  }
  if (request.json) return rows.map((r) => ({ file, ...r }));
  printRows(rows, false);
  return [];
}

/** No query option: the snapshot's metadata and its tables with row counts. */
function summarize(db: DatabaseSync, file: string, request: Request): Row[] {
  const meta = readSnapshotMetadata(db);
  const counts = tables(db).map((name) => ({
    table: name,
    rows: (db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(name)}`).get() as {
      n: number;
    }).n,
  }));
  if (request.json) return [{ file, metadata: meta ?? null, tables: counts }];
  out(`file: ${file}`);
  if (meta) {
    out(`stream: ${meta.stream}`);
    out(`shard: ${meta.shardId}`);
    out(`sequence number: ${meta.sequenceNumber}`);
    out(`records applied: ${meta.recordsApplied}`);
    out(`final: ${meta.final ? "yes" : "no"}`);
    if (meta.childShards.length) {
      out(`child shards: ${meta.childShards.map((c) => c.shardId).join(", ")}`);
    }
    out(`created: ${meta.createdAt}`);
    out(`updated: ${meta.updatedAt}`);
    out(`format version: ${meta.formatVersion}`);
  } else out("metadata: none (not a streambolt snapshot)");
  outTable(["TABLE", "ROWS"], counts.map((c) => [c.table, String(c.rows)]));
  return [];
}

/** Looks inside one file as asked; prints text output, returns the rows for --json. */
function inspectFile(file: string, request: Request): Row[] {
  const { values } = request;
  const db = open(file);
  try {
    if (values.count !== undefined) return countRows(db, file, request);
    if (values.keys !== undefined) return listKeys(db, file, request);
    if (values.get !== undefined) return getRow(db, file, request);
    if (values.sql !== undefined) return runQuery(db, file, request);
    return summarize(db, file, request);
  } finally {
    db.close();
  }
}

/** Parses the arguments into the files and the request; `undefined` for --help. */
function parseRequest(args: string[]): { files: string[]; request: Request } | undefined {
  const { values, positionals } = parse("inspect", args, {
    count: { type: "string" },
    keys: { type: "string" },
    get: { type: "string" },
    table: { type: "string" },
    sql: { type: "string" },
    limit: { type: "string" },
  }, true);
  if (values.help) return undefined;
  if (positionals.length === 0) {
    throw new UsageError('Cannot run "inspect" as no FILE was given: current value is []');
  }
  const limit = wholeNumber("limit", values.limit as string | undefined, 1) ?? 100;
  const modes = ["count", "keys", "get", "sql"].filter((m) => values[m] !== undefined);
  if (modes.length > 1) {
    throw new UsageError(
      `Cannot run "inspect" with more than one of --count, --keys, --get, --sql: current value is ${
        modes.map((m) => "--" + m).join(" ")
      }`,
    );
  }
  const request: Request = {
    values,
    table: (values.table as string | undefined) ?? "kv",
    limit,
    json: Boolean(values.json),
    many: positionals.length > 1,
  };
  return { files: positionals, request };
}

/** Runs the command. */
export function run(args: string[]): Promise<number> {
  const parsed = parseRequest(args);
  if (!parsed) {
    out(HELP);
    return Promise.resolve(0);
  }
  const { files, request } = parsed;
  const results = files.flatMap((file) => inspectFile(file, request));
  if (request.json) {
    const { values } = request;
    if (values.sql !== undefined || values.keys !== undefined) printRows(results, true);
    else outJson(files.length === 1 && results.length === 1 ? results[0] : results);
  }
  return Promise.resolve(0);
}
