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

/** Runs the command. */
export function run(args: string[]): Promise<number> {
  const { values, positionals } = parse("inspect", args, {
    count: { type: "string" },
    keys: { type: "string" },
    get: { type: "string" },
    table: { type: "string" },
    sql: { type: "string" },
    limit: { type: "string" },
  }, true);
  if (values.help) {
    out(HELP);
    return Promise.resolve(0);
  }
  if (positionals.length === 0) {
    throw new UsageError('Cannot run "inspect" as no FILE was given: current value is []');
  }
  const limit = wholeNumber("limit", values.limit as string | undefined, 1) ?? 100;
  const json = Boolean(values.json);
  const table = (values.table as string | undefined) ?? "kv";
  const modes = ["count", "keys", "get", "sql"].filter((m) => values[m] !== undefined);
  if (modes.length > 1) {
    throw new UsageError(
      `Cannot run "inspect" with more than one of --count, --keys, --get, --sql: current value is ${
        modes.map((m) => "--" + m).join(" ")
      }`,
    );
  }
  const results: Row[] = [];
  for (const file of positionals) {
    const db = open(file);
    try {
      if (values.count !== undefined) {
        const name = values.count as string;
        keyColumn(db, name, file);
        const { n } = db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(name)}`).get() as {
          n: number;
        };
        if (json) results.push({ file, table: name, count: n });
        else out(positionals.length > 1 ? `${file}\t${n}` : String(n));
      } else if (values.keys !== undefined) {
        const key = keyColumn(db, table, file);
        const prefix = values.keys as string;
        const rows = db.prepare(
          `SELECT ${quoteIdent(key)} AS key FROM ${quoteIdent(table)}
           WHERE substr(${quoteIdent(key)}, 1, ?) = ? ORDER BY 1 LIMIT ?`,
        ).all(prefix.length, prefix, limit) as Row[];
        if (json) results.push(...rows.map((r) => ({ file, key: jsonValue(r.key) })));
        else for (const r of rows) out(cell(r.key));
      } else if (values.get !== undefined) {
        const key = keyColumn(db, table, file);
        const row = db.prepare(
          `SELECT * FROM ${quoteIdent(table)} WHERE ${quoteIdent(key)} = ?`,
        ).get(values.get as string) as Row | undefined;
        if (!row) {
          throw new Error(
            `Cannot get key as ${file} table ${table} has no such key: current value is ${
              JSON.stringify(values.get)
            }`,
          );
        }
        if (json) results.push({ file, ...row });
        else for (const [k, v] of Object.entries(row)) out(`${k}\t${cell(v)}`);
      } else if (values.sql !== undefined) {
        let rows: Row[];
        try {
          const statement = db.prepare(values.sql as string);
          rows = [];
          for (const row of statement.iterate() as Iterable<Row>) {
            rows.push(row);
            if (rows.length >= limit) break;
          }
          // iterate() yields nothing, silently, when a step fails (such as a write refused by
          // the read-only connection); all() reports the error, and costs nothing when empty.
          if (rows.length === 0) statement.all();
        } catch (error) {
          throw new Error(
            `Cannot run query on ${file} (${(error as Error).message}): current value is ${
              JSON.stringify(values.sql)
            }`,
          );
        }
        if (json) results.push(...rows.map((r) => ({ file, ...r })));
        else printRows(rows, false);
      } else {
        const meta = readSnapshotMetadata(db);
        const counts = tables(db).map((name) => ({
          table: name,
          rows: (db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(name)}`).get() as {
            n: number;
          }).n,
        }));
        if (json) results.push({ file, metadata: meta ?? null, tables: counts });
        else {
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
        }
      }
    } finally {
      db.close();
    }
  }
  if (json) {
    if (values.sql !== undefined || values.keys !== undefined) printRows(results, true);
    else outJson(positionals.length === 1 && results.length === 1 ? results[0] : results);
  }
  return Promise.resolve(0);
}
