/**
 * What streambolt reports to OpenTelemetry, through `@opentelemetry/api`: metrics and traces
 * go to whatever provider the app registered, or to Deno's own exporter when `OTEL_DENO=true`
 * (then `OTEL_EXPORTER_OTLP_ENDPOINT` and the other standard `OTEL_*` variables apply). With
 * neither, the API's no-op provider takes every call and nothing is exported.
 *
 * Metric names follow the semantic-convention style (`streambolt.<thing>.<measure>`, units
 * set); docs/operating.md lists them.
 *
 * @module
 */
import {
  type Attributes,
  context,
  metrics,
  type Span,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";

const SCOPE = "streambolt";

/** The shard a measurement is of. */
export interface ShardAttributes {
  stream: string;
  shardId: string;
}

const attrs = (s: ShardAttributes, extra: Attributes = {}): Attributes => ({
  "streambolt.stream": s.stream,
  "streambolt.shard": s.shardId,
  ...extra,
});

// The latest lag of each shard read in this process (for the stream's largest lag), and when
// each shard was last published (read by the age gauge when a reader collects).
const shardLag = new Map<string, { shard: ShardAttributes; ms: number }>();
const published = new Map<string, { shard: ShardAttributes; at: number }>();

let instruments: ReturnType<typeof createInstruments> | undefined;

/** The instruments, created on first use (on the provider registered by then). */
function m(): ReturnType<typeof createInstruments> {
  return instruments ??= createInstruments();
}

function createInstruments() {
  const meter = metrics.getMeter(SCOPE);
  const counter = (name: string, unit: string, description: string) =>
    meter.createCounter(name, { unit, description });
  const gauge = (name: string, unit: string, description: string) =>
    meter.createGauge(name, { unit, description });
  const made = {
    recordsApplied: counter("streambolt.records.applied", "{record}", "Records applied"),
    recordsSkipped: counter(
      "streambolt.records.skipped",
      "{record}",
      "Records skipped because the generator failed on them",
    ),
    batches: counter("streambolt.batches", "{batch}", "Pages of records applied"),
    bytesUploaded: counter("streambolt.bytes.uploaded", "By", "Stored bytes published"),
    bytesDownloaded: counter("streambolt.bytes.downloaded", "By", "Stored bytes downloaded"),
    retries: counter("streambolt.retries", "{retry}", "Calls retried, by cause"),
    runDuration: meter.createHistogram("streambolt.run.duration", {
      unit: "s",
      description: "Duration of a snapshot run (or of a published point, when following)",
    }),
    shardLag: gauge(
      "streambolt.shard.millis_behind_latest",
      "ms",
      "How far behind the shard's tip the last page read ended",
    ),
    streamLag: gauge(
      "streambolt.stream.millis_behind_latest",
      "ms",
      "The largest lag of the stream's shards read in this process",
    ),
    replicaLag: gauge("streambolt.replica.lag", "ms", "How far behind a live replica is"),
    replicaState: meter.createUpDownCounter("streambolt.replica.state", {
      unit: "{replica}",
      description: "Live replicas in each state",
    }),
  };
  meter.createObservableGauge("streambolt.snapshot.age", {
    unit: "s",
    description: "Time since this process last published a point of the shard",
  }).addCallback((r) => {
    for (const { shard, at } of published.values()) {
      r.observe((Date.now() - at) / 1000, attrs(shard));
    }
  });
  return made;
}

const key = (s: ShardAttributes) => `${s.stream}/${s.shardId}`;

/** Records applied from one page, and how far behind the shard's tip it ended. */
export function recordPage(
  shard: ShardAttributes,
  applied: number,
  skipped: number,
  millisBehindLatest: number,
): void {
  const i = m();
  i.batches.add(1, attrs(shard));
  if (applied > 0) i.recordsApplied.add(applied, attrs(shard));
  if (skipped > 0) i.recordsSkipped.add(skipped, attrs(shard));
  i.shardLag.record(millisBehindLatest, attrs(shard));
  shardLag.set(key(shard), { shard, ms: millisBehindLatest });
  let worst = 0;
  for (const other of shardLag.values()) {
    if (other.shard.stream === shard.stream) worst = Math.max(worst, other.ms);
  }
  i.streamLag.record(worst, { "streambolt.stream": shard.stream });
}

/** Stored bytes moved to or from the store. */
export function recordTransfer(
  direction: "uploaded" | "downloaded",
  shard: ShardAttributes,
  kind: string,
  bytes: number,
): void {
  const counter = direction === "uploaded" ? m().bytesUploaded : m().bytesDownloaded;
  counter.add(bytes, attrs(shard, { "streambolt.snapshot.kind": kind }));
}

/** A point published now. */
export function recordPublished(shard: ShardAttributes): void {
  m();
  published.set(key(shard), { shard, at: Date.now() });
}

/** A call retried, by service and cause (the error's name). */
export function recordRetry(service: string, shard: ShardAttributes, cause: string): void {
  m().retries.add(1, attrs(shard, { "streambolt.service": service, "error.type": cause }));
}

/** A shard this process no longer reads (closed): it no longer counts in the stream's lag. */
export function forgetShard(shard: ShardAttributes): void {
  shardLag.delete(key(shard));
}

/** A live replica's lag, after it applied something. */
export function recordReplicaLag(shard: ShardAttributes, source: string, ms: number): void {
  m().replicaLag.record(ms, attrs(shard, { "streambolt.replica.source": source }));
}

/** A live replica moved from one state to another (`from` undefined: it started). */
export function recordReplicaState(
  shard: ShardAttributes,
  from: string | undefined,
  to: string,
): void {
  const counter = m().replicaState;
  if (from !== undefined) counter.add(-1, attrs(shard, { "streambolt.replica.state": from }));
  counter.add(1, attrs(shard, { "streambolt.replica.state": to }));
}

/** A traced run: a span with a child span per phase, and its duration on a histogram. */
export class RunTrace {
  #span: Span;
  #shard: ShardAttributes;
  #started = performance.now();

  constructor(name: string, shard: ShardAttributes, extra: Attributes = {}) {
    this.#shard = shard;
    this.#span = trace.getTracer(SCOPE).startSpan(name, { attributes: attrs(shard, extra) });
  }

  /** Runs one phase of the run inside a child span. */
  async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    const parent = trace.setSpan(context.active(), this.#span);
    const span = trace.getTracer(SCOPE).startSpan(
      `streambolt.${name}`,
      { attributes: attrs(this.#shard) },
      parent,
    );
    try {
      return await work();
    } catch (error) {
      fail(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /** Sets an attribute on the run's span. */
  set(name: string, value: string | number | boolean): void {
    this.#span.setAttribute(name, value);
  }

  /** Ends the run: its span (with the error, if any) and its duration. */
  end(error?: unknown): void {
    if (error !== undefined) fail(this.#span, error);
    this.#span.end();
    m().runDuration.record(
      (performance.now() - this.#started) / 1000,
      attrs(this.#shard, { outcome: error === undefined ? "ok" : "error" }),
    );
  }
}

function fail(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
}
