import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { tablesWithNullableKey, tablesWithoutPrimaryKey } from "./_delta.ts";

Deno.test("tablesWithNullableKey() names the rowid tables whose key columns may be NULL", () => {
  const db = new DatabaseSync(":memory:");
  db.exec(`
    CREATE TABLE text_key (k TEXT PRIMARY KEY, v);
    CREATE TABLE rowid_key (id INTEGER PRIMARY KEY, v);
    CREATE TABLE not_null_key (k TEXT PRIMARY KEY NOT NULL, v);
    CREATE TABLE without_rowid (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    CREATE TABLE composite (a TEXT NOT NULL, b INTEGER, v, PRIMARY KEY (a, b));
    CREATE TABLE integer_desc (id INTEGER PRIMARY KEY DESC, v);
    CREATE TABLE no_key (v);
  `);
  assert.deepEqual(tablesWithNullableKey(db), ["composite", "integer_desc", "text_key"]);
  assert.deepEqual(tablesWithoutPrimaryKey(db), ["no_key"]);
  db.close();
});
