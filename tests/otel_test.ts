/**
 * OpenTelemetry: a CLI snapshot run with `OTEL_DENO=true` exports streambolt's metrics and
 * spans over OTLP/HTTP (JSON) to a receiver on loopback; without `OTEL_*`, nothing is sent.
 */
import assert from "node:assert/strict";
import { type KinesisClient, ListShardsCommand } from "@aws-sdk/client-kinesis";
import { runCli, spawnCli } from "./support/cli.ts";
import { makeRecords, putRecords } from "./support/data.ts";
import { createStream } from "./support/emulators.ts";
import { sharedKinesisAndS3, SHARES_EMULATORS } from "./support/fixture.ts";

const emulators = sharedKinesisAndS3("streambolt-otel-");
Deno.test.afterAll(() => emulators.stop());

/** What an OTLP/HTTP JSON receiver got, by signal. */
interface Received {
  metrics: unknown[];
  traces: unknown[];
}

/** A minimal OTLP/HTTP receiver (JSON) on a free loopback port. */
function startReceiver(): { endpoint: string; received: Received; stop: () => Promise<void> } {
  const received: Received = { metrics: [], traces: [] };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = await req.json().catch(() => undefined);
    if (path === "/v1/metrics") received.metrics.push(body);
    if (path === "/v1/traces") received.traces.push(body);
    return Response.json({});
  });
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    received,
    stop: () => server.shutdown(),
  };
}

/** Deno's OpenTelemetry exporter on, sending OTLP/HTTP JSON to `endpoint` every 200 ms. */
function exporting(endpoint: string): Record<string, string> {
  return {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_METRIC_EXPORT_INTERVAL: "200",
  };
}

interface OtlpMetric {
  name: string;
  unit?: string;
  sum?: { dataPoints: DataPoint[] };
  gauge?: { dataPoints: DataPoint[] };
  histogram?: { dataPoints: Array<{ count: string | number; attributes?: Attribute[] }> };
}
interface DataPoint {
  asInt?: string | number;
  asDouble?: number;
  attributes?: Attribute[];
}
interface Attribute {
  key: string;
  value: { stringValue?: string };
}
interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes?: Attribute[];
}

function allMetrics(received: Received): OtlpMetric[] {
  return received.metrics.flatMap((body) =>
    ((body as { resourceMetrics?: unknown[] }).resourceMetrics ?? []).flatMap((rm) =>
      ((rm as { scopeMetrics?: unknown[] }).scopeMetrics ?? []).flatMap((sm) =>
        (sm as { metrics?: OtlpMetric[] }).metrics ?? []
      )
    )
  );
}

function allSpans(received: Received): OtlpSpan[] {
  return received.traces.flatMap((body) =>
    ((body as { resourceSpans?: unknown[] }).resourceSpans ?? []).flatMap((rs) =>
      ((rs as { scopeSpans?: unknown[] }).scopeSpans ?? []).flatMap((ss) =>
        (ss as { spans?: OtlpSpan[] }).spans ?? []
      )
    )
  );
}

const attribute = (attrs: Attribute[] | undefined, key: string) =>
  attrs?.find((a) => a.key === key)?.value.stringValue;

/** The largest value of a counter per shard (cumulative temporality: the last export). */
function counterByShard(metrics: OtlpMetric[], name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics.filter((m) => m.name === name)) {
    for (const p of m.sum?.dataPoints ?? []) {
      const shard = attribute(p.attributes, "streambolt.shard")!;
      const value = Number(p.asInt ?? p.asDouble ?? 0);
      out.set(shard, Math.max(value, out.get(shard) ?? 0));
    }
  }
  return out;
}

async function shardIds(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const out = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  return (out.Shards ?? []).map((s) => s.ShardId!);
}

Deno.test(
  "a CLI snapshot with OTEL_DENO=true exports streambolt's metrics and spans over OTLP",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp, env } = await emulators.get();
    const stream = `otel-${crypto.randomUUID().slice(0, 6)}`;
    await createStream(kinesis, stream, 2);
    const put = await putRecords(writer, stream, makeRecords(120, { keys: 30, seed: 70 }));
    const perShard = new Map<string, number>();
    for (const r of put) perShard.set(r.shardId, (perShard.get(r.shardId) ?? 0) + 1);
    const receiver = startReceiver();
    try {
      const cwd = await Deno.makeTempDir({ dir: temp });
      const result = await runCli(["snapshot", "--stream", stream, "--store", "snaps", "-q"], {
        cwd,
        env: { ...env, ...exporting(receiver.endpoint), OTEL_SERVICE_NAME: "streambolt-test" },
      });
      assert.equal(result.code, 0, result.stderr);
      const metrics = allMetrics(receiver.received);
      const names = new Set(metrics.map((m) => m.name));
      for (
        const name of [
          "streambolt.records.applied",
          "streambolt.batches",
          "streambolt.bytes.uploaded",
          "streambolt.run.duration",
          "streambolt.shard.millis_behind_latest",
          "streambolt.stream.millis_behind_latest",
        ]
      ) assert.ok(names.has(name), `metric ${name} in ${[...names].join(", ")}`);
      assert.deepEqual(counterByShard(metrics, "streambolt.records.applied"), perShard);
      assert.equal(metrics.find((m) => m.name === "streambolt.records.applied")?.unit, "{record}");
      assert.equal(metrics.find((m) => m.name === "streambolt.bytes.uploaded")?.unit, "By");

      const spans = allSpans(receiver.received);
      const runs = spans.filter((s) => s.name === "streambolt.snapshot");
      assert.deepEqual(
        new Set(runs.map((s) => attribute(s.attributes, "streambolt.shard"))),
        new Set(await shardIds(kinesis, stream)),
      );
      for (const run of runs) {
        const phases = spans.filter((s) => s.parentSpanId === run.spanId).map((s) => s.name);
        for (const phase of ["find_base", "catch_up", "compact", "encode", "upload"]) {
          assert.ok(phases.includes(`streambolt.${phase}`), `${phase} under ${phases.join(",")}`);
        }
        assert.equal(attribute(run.attributes, "streambolt.stream"), stream);
      }
    } finally {
      await receiver.stop();
    }
  },
);

Deno.test(
  "a following CLI exports the age of its latest point, and SIGTERM stops it with exit 0",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp, env } = await emulators.get();
    const stream = `otel-follow-${crypto.randomUUID().slice(0, 6)}`;
    await createStream(kinesis, stream, 1);
    await putRecords(writer, stream, makeRecords(30, { seed: 72 }));
    const receiver = startReceiver();
    try {
      const cwd = await Deno.makeTempDir({ dir: temp });
      const child = await spawnCli(
        [
          "snapshot",
          "--stream",
          stream,
          "--store",
          "snaps",
          "--follow",
          "--publish-every",
          "200ms",
        ],
        {
          cwd,
          env: { ...env, ...exporting(receiver.endpoint) },
        },
      );
      const output = child.output();
      const ages = () =>
        allMetrics(receiver.received).filter((m) => m.name === "streambolt.snapshot.age")
          .flatMap((m) => m.gauge?.dataPoints ?? []);
      const deadline = Date.now() + 30_000;
      while (ages().length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill("SIGTERM");
      const { code, stderr } = await output;
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      assert.ok(ages().length > 0, "streambolt.snapshot.age exported while following");
      assert.ok(ages().every((p) => Number(p.asDouble ?? p.asInt) >= 0));
    } finally {
      await receiver.stop();
    }
  },
);

Deno.test(
  "without OTEL_* set, a CLI snapshot sends nothing",
  SHARES_EMULATORS,
  async () => {
    const { kinesis, writer, temp, env } = await emulators.get();
    const stream = `otel-off-${crypto.randomUUID().slice(0, 6)}`;
    await createStream(kinesis, stream, 1);
    await putRecords(writer, stream, makeRecords(20, { seed: 71 }));
    const receiver = startReceiver();
    try {
      const cwd = await Deno.makeTempDir({ dir: temp });
      // The endpoint is set but OTEL_DENO is not: Deno's exporter stays off.
      const result = await runCli(["snapshot", "--stream", stream, "--store", "snaps", "-q"], {
        cwd,
        env: { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint },
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(receiver.received.metrics.length + receiver.received.traces.length, 0);
    } finally {
      await receiver.stop();
    }
  },
);
