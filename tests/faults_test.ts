/**
 * The fault suite: proves the failure model of DESIGN.md with faults injected for real —
 * killed processes, SDK middleware errors, corrupted and truncated objects, interrupted
 * multipart uploads, racing producers, a full disk, and bad records. Seeded and bounded.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { type KinesisClient, ListShardsCommand } from "@aws-sdk/client-kinesis";
import { UploadPartCommand } from "@aws-sdk/client-s3";
import {
  FileSnapshotStore,
  logGenerator,
  readSnapshotMetadata,
  S3SnapshotStore,
  ShardReadError,
  ShardSnapshotFinder,
  ShardSnapshotter,
  type Snapshot,
  SnapshotIntegrityError,
  type SnapshotStore,
  StreamSnapshotter,
} from "../mod.ts";
import { runCli, spawnCli } from "./support/cli.ts";
import { makeRecords, putRecords, type PutResult, seededRandom } from "./support/data.ts";
import { createBucket, createStream, kinesisClient, s3Client } from "./support/emulators.ts";
import {
  CONNECTION_RESET,
  EXPIRED_ITERATOR,
  type Fault,
  FaultCounter,
  injectFaults,
  interceptCommands,
  INTERNAL,
  LIMIT_EXCEEDED,
  SLOW_DOWN,
  THROTTLED,
  UNAVAILABLE,
} from "./support/faults.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS } from "./support/fixture.ts";
import { exists } from "./support/snapshots.ts";

const KILL_TRIALS = 32;
/** Added to by every case; printed once, after the last case of the file. */
const totals = { killTrials: 0, faultsInjected: 0, snapshotsVerified: 0, recordsLost: 0 };

const emulators = sharedKinesisAndS3("streambolt-faults-");
Deno.test.afterAll(async () => {
  const ran = emulators.started;
  try {
    await emulators.stop();
  } finally {
    if (ran) {
      console.log(
        `fault suite: ${totals.killTrials} kill trials, ${totals.faultsInjected} faults injected, ` +
          `${totals.snapshotsVerified} snapshots verified, ${totals.recordsLost} records lost`,
      );
    }
  }
});

/** Whether this machine lets the tests mount a small tmpfs, for a real full disk. */
async function canMountTmpfs(): Promise<boolean> {
  const probe = await Deno.makeTempDir({ prefix: "streambolt-mount-probe-" });
  try {
    return await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
      stdout: "null",
      stderr: "null",
    }).output().then(async (o) => {
      if (o.success) await new Deno.Command("umount", { args: [probe] }).output();
      return o.success;
    }).catch(() => false);
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

async function shardIds(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const out = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  return (out.Shards ?? []).map((s) => s.ShardId!);
}

/**
 * Downloads and verifies the latest snapshot of a shard (no fallback), and checks it holds
 * exactly the records put to the shard up to its sequence number: none missing, none twice.
 */
async function verifyLatest(
  store: SnapshotStore,
  stream: string,
  shardId: string,
  put: PutResult[],
  dir: string,
): Promise<Snapshot | undefined> {
  const finder = new ShardSnapshotFinder({ store, stream, shardId, localPath: dir });
  let latest: Snapshot | undefined;
  try {
    latest = await finder.downloadLatestSnapshot();
  } catch (error) {
    if (store instanceof FileSnapshotStore) {
      const shardDir = join(store.root, stream, shardId);
      for (const e of await Array.fromAsync(Deno.readDir(shardDir)).catch(() => [])) {
        const info = await Deno.stat(join(shardDir, e.name)).catch(() => undefined);
        const text = e.name.endsWith(".json")
          ? await Deno.readTextFile(join(shardDir, e.name)).catch((x) => String(x))
          : "";
        console.log(`  ${e.name} ${info?.size} ${info?.mtime?.toISOString()} ${text}`);
      }
    }
    throw error;
  }
  if (!latest) return undefined;
  const db = new DatabaseSync(latest.localFile, { readOnly: true });
  try {
    const rows = db.prepare("SELECT sequence_number FROM log WHERE shard_id = ?").all(
      shardId,
    ) as Array<{ sequence_number: string }>;
    const meta = readSnapshotMetadata(db)!;
    const expected = put.filter((p) =>
      p.shardId === shardId && BigInt(p.sequenceNumber) <= BigInt(latest.sequenceNumber)
    ).map((p) => p.sequenceNumber);
    const got = new Set(rows.map((r) => r.sequence_number));
    const lost = expected.filter((s) => !got.has(s)).length;
    totals.recordsLost += lost;
    totals.snapshotsVerified++;
    assert.equal(lost, 0, `records lost in ${latest.key}`);
    assert.equal(rows.length, expected.length, `no extra or duplicate rows in ${latest.key}`);
    assert.equal(meta.recordsApplied, expected.length);
    assert.equal(meta.sequenceNumber, latest.sequenceNumber);
  } finally {
    db.close();
  }
  return latest;
}

/** Hidden working files (work dirs, temp downloads) anywhere under a local directory. */
async function leftovers(localDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.name.startsWith(".")) found.push(path);
      if (entry.isDirectory) await walk(path);
    }
  };
  await walk(localDir);
  return found;
}

Deno.test(
  `kill -9 at random points of ${KILL_TRIALS} CLI snapshot runs: every latest snapshot verifies, a rerun catches up`,
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp, env } = await emulators.get();
    const stream = "kill";
    await createStream(kinesis, stream, 2);
    await createBucket(s3, "kill-bucket");
    const shards = await shardIds(kinesis, stream);
    const cwd = await Deno.makeTempDir({ dir: temp });
    const stores: Array<[string, SnapshotStore]> = [
      ["file-snaps", new FileSnapshotStore({ root: join(cwd, "file-snaps") })],
      [
        "s3://kill-bucket/snaps",
        new S3SnapshotStore({ client: s3, bucket: "kill-bucket", prefix: "snaps" }),
      ],
    ];
    const random = seededRandom(2026);
    const put: PutResult[] = [];
    const phases = ["catch-up", "compact", "upload", "start"];
    const killedIn = new Map<string, number>();
    for (let trial = 0; trial < KILL_TRIALS; trial++) {
      put.push(...await putRecords(writer, stream, makeRecords(60, { seed: 100 + trial })));
      const [url, store] = stores[trial % 2];
      const target = phases[trial % phases.length];
      const child = await spawnCli(
        ["snapshot", "--stream", stream, "--store", url, "--generator", "log"],
        { cwd, env },
      );
      // Kill when the run reports the target phase (plus a random few ms), or at a random
      // time for "start".
      let lastPhase = "start";
      const stdoutDone = child.stdout.pipeTo(new WritableStream());
      const killed = (async () => {
        if (target === "start") {
          await new Promise((r) => setTimeout(r, 100 + random() * 700));
          return;
        }
        const lines = child.stderr.pipeThrough(new TextDecoderStream());
        let buffer = "";
        for await (const chunk of lines) {
          buffer += chunk;
          const phase = [...buffer.matchAll(/phase=([a-z-]+)/g)].at(-1)?.[1];
          if (phase) lastPhase = phase;
          if (phase === target || (phase === "done")) {
            await new Promise((r) => setTimeout(r, random() * 15));
            return;
          }
        }
      })();
      await killed;
      try {
        child.kill("SIGKILL");
      } catch {
        // it finished first
      }
      const status = await child.status;
      await stdoutDone.catch(() => {});
      await child.stderr.cancel().catch(() => {});
      killedIn.set(lastPhase, (killedIn.get(lastPhase) ?? 0) + 1);
      totals.killTrials++;
      // Whatever was killed, every latest snapshot is whole and verifies.
      for (const shardId of shards) {
        await verifyLatest(store, stream, shardId, put, await Deno.makeTempDir({ dir: temp }));
      }
      // A rerun succeeds and holds every record exactly once; nothing is left behind.
      const rerun = await runCli(
        ["snapshot", "--stream", stream, "--store", url, "--generator", "log", "-q"],
        { cwd, env },
      );
      assert.equal(
        rerun.code,
        0,
        `trial ${trial} (${status.signal ?? status.code}): ${rerun.stderr}`,
      );
      for (const shardId of shards) {
        const latest = await verifyLatest(
          store,
          stream,
          shardId,
          put,
          await Deno.makeTempDir({ dir: temp }),
        );
        assert.equal(
          latest?.sequenceNumber,
          put.filter((p) => p.shardId === shardId).map((p) => p.sequenceNumber).reduce((a, b) =>
            BigInt(a) > BigInt(b) ? a : b
          ),
        );
      }
      assert.deepEqual(await leftovers(join(cwd, ".streambolt-local")), [], `trial ${trial}`);
    }
    // The interrupted lineages, caught up once more, equal a run that was never interrupted.
    for (const [url] of stores) {
      const last = await runCli(
        ["snapshot", "--stream", stream, "--store", url, "--generator", "log", "-q"],
        { cwd, env },
      );
      assert.equal(last.code, 0, last.stderr);
    }
    const clean = await runCli(
      [
        "snapshot",
        "--stream",
        stream,
        "--store",
        "clean-snaps",
        "--generator",
        "log",
        "-q",
        "--json",
      ],
      { cwd, env },
    );
    assert.equal(clean.code, 0, clean.stderr);
    for (const shardId of shards) {
      const a = await verifyLatest(
        stores[0][1],
        stream,
        shardId,
        put,
        await Deno.makeTempDir({ dir: temp }),
      );
      const b = await verifyLatest(
        stores[1][1],
        stream,
        shardId,
        put,
        await Deno.makeTempDir({ dir: temp }),
      );
      const c = await verifyLatest(
        new FileSnapshotStore({ root: join(cwd, "clean-snaps") }),
        stream,
        shardId,
        put,
        await Deno.makeTempDir({ dir: temp }),
      );
      assert.equal(a?.sequenceNumber, c?.sequenceNumber);
      assert.equal(b?.sequenceNumber, c?.sequenceNumber);
    }
    console.log(
      `kill trials by the phase last reported: ${JSON.stringify(Object.fromEntries(killedIn))}`,
    );
    assert.ok(killedIn.size >= 3, "kills landed in several phases");
  },
);

Deno.test(
  "throttling and transient errors on Kinesis and S3 still give exact contents",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp, kinesisEmulator: kinesisEmu, s3Emulator: s3Emu } =
      await emulators.get();
    const stream = "flaky";
    await createStream(kinesis, stream, 2);
    await createBucket(s3, "flaky-bucket");
    const put = await putRecords(writer, stream, makeRecords(2_000, { seed: 7 }), 2);
    const counter = new FaultCounter();
    const random = seededRandom(99);
    const flakyKinesis = kinesisClient(kinesisEmu.endpoint);
    const flakyS3 = s3Client(s3Emu.endpoint);
    const kinds: Fault[] = [THROTTLED, LIMIT_EXCEEDED, INTERNAL, UNAVAILABLE, CONNECTION_RESET];
    injectFaults(flakyKinesis, [
      "GetRecordsCommand",
      "GetShardIteratorCommand",
      "ListShardsCommand",
    ], (command) => {
      const roll = random();
      if (roll >= 0.3) return undefined;
      if (command === "GetRecordsCommand" && roll < 0.06) return EXPIRED_ITERATOR;
      return kinds[Math.floor(random() * kinds.length)];
    }, counter);
    injectFaults(
      flakyS3,
      ["PutObjectCommand", "GetObjectCommand", "HeadObjectCommand", "ListObjectsV2Command"],
      () =>
        random() < 0.25
          ? [SLOW_DOWN, INTERNAL, CONNECTION_RESET][Math.floor(random() * 3)]
          : undefined,
      counter,
    );
    try {
      const store = new S3SnapshotStore({ client: flakyS3, bucket: "flaky-bucket" });
      for (let round = 0; round < 2; round++) {
        await new StreamSnapshotter({
          kinesis: flakyKinesis,
          store,
          stream,
          localPath: join(temp, "flaky"),
          generator: logGenerator(),
          limit: 50,
          retry: { baseDelayMs: 5, maxDelayMs: 50, maxAttempts: 25 },
        }).snapshotStream();
        if (round === 0) {
          put.push(...await putRecords(writer, stream, makeRecords(500, { seed: 8 })));
        }
      }
      for (const shardId of await shardIds(kinesis, stream)) {
        const latest = await verifyLatest(
          new S3SnapshotStore({ client: s3, bucket: "flaky-bucket" }),
          stream,
          shardId,
          put,
          await Deno.makeTempDir({ dir: temp }),
        );
        assert.ok(latest);
      }
      assert.ok(counter.total >= 10, `faults injected: ${counter.total}`);
      assert.ok((counter.byName.get("ExpiredIteratorException") ?? 0) > 0);
      totals.faultsInjected += counter.total;
    } finally {
      flakyKinesis.destroy();
      flakyS3.destroy();
    }
  },
);

Deno.test(
  "faults that never stop give a clear error in bounded time, and publish nothing",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp, kinesisEmulator: kinesisEmu, s3Emulator: s3Emu } =
      await emulators.get();
    const stream = "down";
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    await putRecords(writer, stream, makeRecords(50, { seed: 3 }));
    const counter = new FaultCounter();
    const broken = kinesisClient(kinesisEmu.endpoint);
    injectFaults(broken, ["GetRecordsCommand"], () => UNAVAILABLE, counter);
    const store = new FileSnapshotStore({ root: join(temp, "down-snaps") });
    const localPath = join(temp, "down-local");
    try {
      const t0 = performance.now();
      await assert.rejects(
        new ShardSnapshotter({
          kinesis: broken,
          store,
          stream,
          shardId,
          localPath,
          generator: logGenerator(),
          retry: { baseDelayMs: 10, maxDelayMs: 200, maxAttempts: 5 },
        }).snapshotShard(),
        (error: Error) => {
          assert.ok(error instanceof ShardReadError);
          assert.match(error.message, new RegExp(shardId));
          assert.match(error.message, /ServiceUnavailable/);
          return true;
        },
      );
      assert.ok(performance.now() - t0 < 60_000, "bounded time");
      assert.deepEqual(await Array.fromAsync(store.list("")), []);
      assert.deepEqual(await leftovers(localPath), []);
      totals.faultsInjected += counter.total;

      // S3 refusing every upload: the same.
      const brokenS3 = s3Client(s3Emu.endpoint);
      injectFaults(
        brokenS3,
        ["PutObjectCommand", "UploadPartCommand", "CreateMultipartUploadCommand"],
        () => SLOW_DOWN,
        counter,
      );
      await createBucket(s3, "down-bucket");
      const s3Store = new S3SnapshotStore({ client: brokenS3, bucket: "down-bucket" });
      try {
        await assert.rejects(
          new ShardSnapshotter({
            kinesis,
            store: s3Store,
            stream,
            shardId,
            localPath,
            generator: logGenerator(),
          })
            .snapshotShard(),
          /SlowDown/,
        );
        assert.deepEqual(await Array.fromAsync(s3Store.list("")), []);
        assert.deepEqual(await leftovers(localPath), []);
      } finally {
        brokenS3.destroy();
      }
      totals.faultsInjected += counter.total;
    } finally {
      broken.destroy();
    }
  },
);

Deno.test(
  "corrupted or truncated snapshots are refused, and a fallback is offered",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp, env } = await emulators.get();
    const stream = "corrupt";
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    await createBucket(s3, "corrupt-bucket");
    const cwd = await Deno.makeTempDir({ dir: temp });
    for (
      const [url, store] of [
        ["file-snaps", new FileSnapshotStore({ root: join(cwd, "file-snaps") })],
        [
          "s3://corrupt-bucket/x",
          new S3SnapshotStore({ client: s3, bucket: "corrupt-bucket", prefix: "x" }),
        ],
      ] as Array<[string, SnapshotStore]>
    ) {
      const produce = (localPath = join(cwd, "work")) =>
        new ShardSnapshotter({
          kinesis,
          store,
          stream,
          shardId,
          localPath,
          generator: logGenerator(),
          full: true, // full snapshots only: damaged deltas have their own case
        }).snapshotShard();
      for (const damage of ["flip", "truncate"]) {
        const put = await putRecords(writer, stream, makeRecords(40, { seed: damage.length }));
        const older = await produce();
        put.push(
          ...await putRecords(writer, stream, makeRecords(40, { seed: 50 + damage.length })),
        );
        const newer = await produce();
        const raw = join(cwd, "raw");
        const { metadata } = await store.download(newer.key, raw);
        const bytes = await Deno.readFile(raw);
        const bad = damage === "flip"
          ? bytes.map((b, i) => (i === 100 ? b ^ 0x5a : b))
          : bytes.subarray(0, Math.floor(bytes.length * 0.7));
        await Deno.writeFile(raw, bad);
        await store.delete([newer.key]);
        await store.put(newer.key, raw, { metadata });

        const plain = await runCli([
          "download",
          "--stream",
          stream,
          "--shard",
          shardId,
          "--store",
          url,
          "--out",
          "dl",
        ], {
          cwd,
          env,
        });
        assert.equal(plain.code, 1);
        assert.match(plain.stderr, /SHA-256/);
        assert.equal(plain.stderr.trim().split("\n").length, 1);
        const fallback = await runCli(
          [
            "download",
            "--stream",
            stream,
            "--shard",
            shardId,
            "--store",
            url,
            "--out",
            "dl",
            "--fallback",
            "--json",
          ],
          { cwd, env },
        );
        assert.equal(fallback.code, 0, fallback.stderr);
        assert.equal(JSON.parse(fallback.stdout).key, older.key);
        assert.match(fallback.stderr, /failed verification/);
        // A producer without a local copy of that point (another host) must download it:
        // it refuses the damaged object and builds nothing on it.
        await assert.rejects(
          produce(join(cwd, `elsewhere-${damage}-${store.url.length}`)),
          SnapshotIntegrityError,
        );
        totals.faultsInjected++;
        await store.delete([newer.key]); // the operator removes the bad one; work goes on
      }
    }
  },
);

Deno.test(
  "an interrupted multipart upload is aborted and publishes nothing",
  SHARES_EMULATORS,
  async () => {
    const { s3, temp, s3Emulator: s3Emu } = await emulators.get();
    await createBucket(s3, "mpu-bucket");
    const counter = new FaultCounter();
    const failing = s3Client(s3Emu.endpoint);
    let uploadId: string | undefined;
    let parts = 0;
    interceptCommands(failing, (command, input) => {
      if (command !== "UploadPartCommand") return;
      uploadId = input.UploadId as string;
      if (++parts === 3) {
        counter.add("UploadPart");
        throw Object.assign(new Error("injected: connection lost mid-upload"), {
          name: "InvalidPart",
          $metadata: { httpStatusCode: 400 },
        });
      }
    });
    const store = new S3SnapshotStore({
      client: failing,
      bucket: "mpu-bucket",
      partSize: 5 * 1024 * 1024,
      concurrency: 1,
    });
    const file = join(temp, "big.bin");
    await Deno.writeFile(file, new Uint8Array(22 * 1024 * 1024).fill(7));
    try {
      await assert.rejects(
        store.put("s/shardId-0/1.sqlite.zst", file, { metadata: { sha256: "x" } }),
        /mid-upload/,
      );
      assert.ok(uploadId, "a multipart upload was started");
      assert.deepEqual(await Array.fromAsync(store.list("")), []);
      // The upload was aborted: its id no longer takes parts.
      await assert.rejects(
        s3.send(
          new UploadPartCommand({
            Bucket: "mpu-bucket",
            Key: "s/shardId-0/1.sqlite.zst",
            UploadId: uploadId,
            PartNumber: 9,
            Body: new Uint8Array(10),
          }),
        ),
        /NoSuchUpload|not found|does not exist/i,
      );
      // Aborted by signal half-way: the same.
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 30);
      await assert.rejects(
        new S3SnapshotStore({
          client: s3,
          bucket: "mpu-bucket",
          partSize: 5 * 1024 * 1024,
          concurrency: 1,
        })
          .put("s/shardId-0/2.sqlite.zst", file, { metadata: {}, signal: abort.signal }),
      );
      assert.deepEqual(await Array.fromAsync(store.list("")), []);
      totals.faultsInjected += counter.total + 1;
    } finally {
      failing.destroy();
    }
  },
);

Deno.test(
  "racing producers on one shard: every published snapshot verifies",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, s3, temp } = await emulators.get();
    const stream = "race";
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    await createBucket(s3, "race-bucket");
    const put: PutResult[] = [];
    for (
      const store of [
        new FileSnapshotStore({ root: join(temp, "race-file") }),
        new S3SnapshotStore({ client: s3, bucket: "race-bucket" }),
      ]
    ) {
      for (let round = 0; round < 3; round++) {
        put.push(...await putRecords(writer, stream, makeRecords(150, { seed: 500 + round })));
        const results = await Promise.allSettled(
          Array.from({ length: 3 }, (_, i) =>
            new ShardSnapshotter({
              kinesis,
              store,
              stream,
              shardId,
              localPath: join(temp, `race-${i}`),
              generator: logGenerator(),
            }).snapshotShard()),
        );
        for (const r of results) {
          assert.equal(r.status, "fulfilled", String((r as PromiseRejectedResult).reason));
        }
        const finder = new ShardSnapshotFinder({
          store,
          stream,
          shardId,
          localPath: join(temp, "race-check"),
        });
        for (const snap of await finder.findSnapshots()) {
          await finder.downloadSnapshot(snap); // verifies
          const db = new DatabaseSync(snap.localFile, { readOnly: true });
          const n = (db.prepare("SELECT count(*) AS n FROM log").get() as { n: number }).n;
          db.close();
          const expected = put.filter((p) =>
            BigInt(p.sequenceNumber) <= BigInt(snap.sequenceNumber)
          ).length;
          assert.equal(n, expected, snap.key);
          totals.snapshotsVerified++;
        }
      }
    }
  },
);

// A real full disk needs a small tmpfs: mount one once to see whether this machine lets us.
const canMount = await canMountTmpfs();

Deno.test({
  name: "a full disk gives a clear error, publishes nothing and leaves nothing behind",
  ignore: !canMount,
  ...SHARES_EMULATORS,
  fn: async () => {
    const { kinesis, writer, temp } = await emulators.get();
    const stream = "full";
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    const big = makeRecords(2_500, { seed: 12 });
    await putRecords(writer, stream, big, 2);
    const tiny = join(temp, "tiny");
    await Deno.mkdir(tiny);
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=256k", "tmpfs", tiny],
    })
      .output();
    if (!mount.success) {
      console.log(`mount refused here: ${new TextDecoder().decode(mount.stderr)}`);
      return;
    }
    try {
      const store = new FileSnapshotStore({ root: join(temp, "full-snaps") });
      await assert.rejects(
        new ShardSnapshotter({
          kinesis,
          store,
          stream,
          shardId,
          localPath: tiny,
          generator: logGenerator(),
        })
          .snapshotShard(),
        (error: Error) => {
          assert.match(error.message, /full|space/i);
          return true;
        },
      );
      assert.deepEqual(await Array.fromAsync(store.list("")), []);
      assert.deepEqual(
        await Array.fromAsync(Deno.readDir(tiny)),
        [],
        "nothing left on the full disk",
      );
      const ok = await new ShardSnapshotter({
        kinesis,
        store,
        stream,
        shardId,
        localPath: join(temp, "roomy"),
        generator: logGenerator(),
      }).snapshotShard();
      assert.ok(ok.key);
      totals.faultsInjected++;
    } finally {
      await new Deno.Command("umount", { args: [tiny] }).output();
    }
  },
});

Deno.test(
  "an unwritable local directory gives a clear error, and nothing is published",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp, env } = await emulators.get();
    // A stream of its own with records, so that the local directory is all that is wrong.
    const stream = "unwritable";
    await createStream(kinesis, stream, 1);
    await putRecords(writer, stream, makeRecords(20, { seed: 30 }));
    const cwd = await Deno.makeTempDir({ dir: temp });
    const outside = await Deno.makeTempDir({ prefix: "streambolt-outside-" });
    try {
      const result = await runCli(
        ["snapshot", "--stream", stream, "--store", "snaps", "--local-dir", outside],
        { cwd, env },
      );
      assert.notEqual(result.code, 0);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.ok(result.stderr.includes(outside), result.stderr);
      assert.equal(await exists(join(cwd, "snaps")), false);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  },
);

Deno.test(
  "bad records fail the run naming shard and record, or are each skipped with a log line",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp, env } = await emulators.get();
    const stream = "poison";
    await createStream(kinesis, stream, 1);
    const [shardId] = await shardIds(kinesis, stream);
    const records = makeRecords(200, { seed: 21 }).map((r, i) =>
      i % 50 === 7 ? { ...r, partitionKey: `poison-${i}` } : r
    );
    const put = await putRecords(writer, stream, records);
    const poisoned = put.filter((_, i) => records[i].partitionKey.startsWith("poison-"));
    const cwd = await Deno.makeTempDir({ dir: temp });
    await Deno.writeTextFile(
      join(cwd, "strict.ts"),
      `// Self-contained: a --generator module may import only what the CLI can read.
    export default {
      onStart(db) {
        db.exec("CREATE TABLE IF NOT EXISTS log (shard_id TEXT, sequence_number TEXT, data BLOB)");
      },
      onRecords(db, batch) {
        const insert = db.prepare("INSERT INTO log VALUES (?, ?, ?)");
        for (const r of batch.records) {
          if (r.partitionKey.startsWith("poison-")) throw new Error("unparseable event " + r.partitionKey);
          insert.run(batch.shardId, r.sequenceNumber, r.data);
        }
      },
    };
    `,
    );
    const failed = await runCli(
      ["snapshot", "--stream", stream, "--store", "snaps", "--generator", "./strict.ts", "-q"],
      { cwd, env },
    );
    assert.equal(failed.code, 1);
    assert.ok(failed.stderr.includes(shardId), failed.stderr);
    assert.ok(failed.stderr.includes(poisoned[0].sequenceNumber), failed.stderr);
    assert.equal(await exists(join(cwd, "snaps", stream)), false, "nothing published");

    const skipped = await runCli(
      [
        "snapshot",
        "--stream",
        stream,
        "--store",
        "snaps",
        "--generator",
        "./strict.ts",
        "--skip-bad-records",
      ],
      { cwd, env },
    );
    assert.equal(skipped.code, 0, skipped.stderr);
    const skipLines = skipped.stderr.split("\n").filter((l) => l.includes("skipped a record"));
    assert.equal(skipLines.length, poisoned.length);
    for (const p of poisoned) assert.ok(skipLines.some((l) => l.includes(p.sequenceNumber)));
    const finder = new ShardSnapshotFinder({
      store: new FileSnapshotStore({ root: join(cwd, "snaps") }),
      stream,
      shardId,
      localPath: join(cwd, "check"),
    });
    const latest = (await finder.downloadLatestSnapshot())!;
    const db = new DatabaseSync(latest.localFile, { readOnly: true });
    const n = (db.prepare("SELECT count(*) AS n FROM log").get() as { n: number }).n;
    const meta = readSnapshotMetadata(db)!;
    db.close();
    assert.equal(n, put.length - poisoned.length);
    assert.equal(meta.recordsSkipped, poisoned.length);
    assert.equal(meta.recordsApplied, n);
    totals.faultsInjected += poisoned.length;
  },
);
