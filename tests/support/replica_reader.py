"""A reader of streambolt replica files that nobody in this project wrote against its code:
Python 3's standard sqlite3 module, in a process of its own, as a consumer in another language
would read them. Used by tests/replicate_test.ts.

    python3 replica_reader.py poll FILE INTERVAL_MS CHECK_SQL
        Polls FILE read-only every INTERVAL_MS; each poll is one read transaction that reads
        the point (streambolt_meta) and CHECK_SQL (one row, one value: true when the
        invariant holds) and prints one JSON line: {"poll", "seq", "ok"} (or "missing", or
        "error"). Runs until killed.

    python3 replica_reader.py route DIR KEY...
        Routes each partition key with DIR/shards.json (MD5 of the key, as Kinesis does) and
        looks it up in the kv table of the file it routes to; prints one JSON object
        {key: {"shard", "value" (hex, or null when missing)}}.

    python3 replica_reader.py check FILE CHECK_SQL
        Prints {"integrity", "seq", "ok"} for FILE once.
"""

import hashlib
import json
import os
import sqlite3
import sys
import time


def connect(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=10)


def read_point(conn, check_sql):
    conn.execute("BEGIN")
    try:
        seq, applied = conn.execute(
            "SELECT sequence_number, records_applied FROM streambolt_meta"
        ).fetchone()
        ok = conn.execute(check_sql).fetchone()[0]
        return seq, bool(ok)
    finally:
        conn.execute("COMMIT")


def poll(path, interval_ms, check_sql):
    conn = None
    n = 0
    while True:
        n += 1
        line = {"poll": n}
        try:
            if conn is None and not os.path.exists(path):
                line["missing"] = True
            else:
                conn = conn or connect(path)
                line["seq"], line["ok"] = read_point(conn, check_sql)
        except sqlite3.Error as error:
            line["error"] = str(error)
        print(json.dumps(line), flush=True)
        time.sleep(interval_ms / 1000)


def route(directory, keys):
    with open(os.path.join(directory, "shards.json")) as f:
        shards = json.load(f)["shards"]
    found = {}
    for key in keys:
        hash_key = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16)
        shard = next(
            s for s in shards
            if int(s["startingHashKey"]) <= hash_key <= int(s["endingHashKey"])
        )
        conn = connect(os.path.join(directory, shard["file"]))
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        conn.close()
        found[key] = {"shard": shard["shardId"], "value": row[0].hex() if row else None}
    print(json.dumps(found))


def check(path, check_sql):
    conn = connect(path)
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    seq, ok = read_point(conn, check_sql)
    print(json.dumps({"integrity": integrity, "seq": seq, "ok": ok}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "poll":
        poll(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif command == "route":
        route(sys.argv[2], sys.argv[3:])
    else:
        check(sys.argv[2], sys.argv[3])
