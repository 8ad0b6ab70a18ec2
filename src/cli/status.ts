/**
 * `streambolt status`: whether every shard's snapshot is fresh, for cron alerts and probes.
 *
 * @module
 */
import { BOOTSTRAP_SEQUENCE } from "../snapshot_key.ts";
import { type ShardStatus, type StreamStatus, streamStatus } from "../status.ts";
import {
  formatDuration,
  LOG_HELP,
  out,
  outJson,
  outTable,
  parse,
  parseDuration,
  streamArg,
} from "./_common.ts";
import { makeKinesisClient } from "./_aws.ts";
import { ConfigurationError } from "../errors.ts";
import { explainError, serviceOf } from "./_common.ts";
import { type CliLogger, cliLogger } from "./_log.ts";
import { openCliStore, STORE_HELP, STORE_OPTIONS } from "./_store.ts";
import type { SnapshotStore } from "../store/snapshot_store.ts";

/** Help for the command. */
export const HELP = `Usage: streambolt status --stream NAME --store URL [--max-age 15m] [--json]

Checks that every shard of a stream (open and closed) has a fresh snapshot, downloading none:
one row per shard with its newest restorable point (sequence number, kind, age of its newest
object, records applied, deltas in its chain, final or not) and, for a point that is not
final, how far it trails the shard (TRAIL: the time since its last applied record arrived).
Made for cron alerts and Kubernetes probes.

Exit status:
  0  every shard passes
  1  an open shard has no snapshot, or its newest point is older than --max-age while a
     record that arrived more than --max-age ago waits after it; or a shard's point that is
     not final trails it by more than half the stream's retention (RETENTION "at risk", also
     warned on stderr). That fails the check too: past the whole retention, the records
     after the snapshot may be trimmed and the producer stops with a retention gap. One line
     on stderr names the failing shards; the table (or JSON) is still printed. Closed shards
     never fail for their age or for having no snapshot.
  2  bad usage

A producer publishes nothing when no records are new, so an idle shard's snapshot grows old
while complete: for an open shard whose snapshot is older than --max-age, status reads the
first record after it (GetShardIterator, then GetRecords of one record) and passes the shard
when none waits (CHECK "ok (idle)") or when it arrived less than --max-age ago.

When Kinesis cannot be reached (no AWS region or credentials set, nothing answering at its
endpoint), status reports what the store alone knows: the shards it holds snapshots of, with
their points, kinds, chains, ages and TRAIL (from the snapshots' metadata). STATE (unless the
point is final) and RETENTION show "?", one warning line on stderr says why and how to set
Kinesis up, and the exit status follows the rules above on what the store can tell: a point
older than --max-age fails (whether records wait after it cannot be asked), a shard with no
snapshot at all is not seen, and a store with no snapshot of the stream at all fails. In
--json, "kinesis" is false and unknown fields are null.

Options:
  --stream NAME               the Kinesis stream (required)
${STORE_HELP}
  --max-age DURATION          how old an open shard's snapshot, and the records waiting
                              after it, may be (e.g. 90s, 15m, 2h; default: 15m)
  --json                      print an object: the stream's check and one entry per shard
${LOG_HELP}
  -h, --help                  this help

It calls ListShards and DescribeStreamSummary on the stream (and the two reads above), lists
the store and reads the metadata of each shard's newest object (HeadObject, which needs
s3:GetObject). Where that metadata is missing (a snapshot written before it existed),
APPLIED and TRAIL show "?".`;

/** The check failed: the error a failing `status` ends with (exit status 1). */
class StatusCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StatusCheckError";
  }
}

/** The command's options, parsed and checked. */
interface StatusArgs {
  values: Record<string, unknown>;
  stream: string;
  /** As given, for messages. */
  maxAge: string;
  maxAgeMs: number;
}

/** Parses and checks the arguments; `undefined` for --help. */
function parseStatusArgs(args: string[]): StatusArgs | undefined {
  const { values } = parse("status", args, {
    ...STORE_OPTIONS,
    stream: { type: "string" },
    "max-age": { type: "string" },
  });
  if (values.help) return undefined;
  const stream = streamArg(values, "status");
  const maxAge = (values["max-age"] as string | undefined) ?? "15m";
  return { values, stream, maxAge, maxAgeMs: parseDuration("max-age", maxAge) };
}

/** Runs the command. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseStatusArgs(args);
  if (!parsed) {
    out(HELP);
    return 0;
  }
  const { values, stream, maxAgeMs } = parsed;
  const store = await openCliStore(values, "status");
  const logger = cliLogger({ quiet: values.quiet as boolean, verbose: values.verbose as boolean });
  const { status, unreachable } = await checkStatus(store, stream, maxAgeMs);
  if (unreachable) {
    logger.warn(
      `status shows what the store alone knows (shard states, retention and waiting records unknown) as ${
        unreachable.message.replace(/^Cannot reach Kinesis as /, "Kinesis cannot be reached: ")
      }`,
    );
  }
  warnRetention(status, logger);
  if (values.json) outJson(statusJson(status, store.url));
  else printTable(status);
  if (!status.ok) throw new StatusCheckError(failureMessage(status, parsed.maxAge, store.url));
  return 0;
}

/**
 * The check with Kinesis; when Kinesis cannot be reached (no region, no credentials, nothing
 * answering at its endpoint), the check of the store alone and why.
 */
async function checkStatus(
  store: SnapshotStore,
  stream: string,
  maxAgeMs: number,
): Promise<{ status: StreamStatus; unreachable?: ConfigurationError }> {
  // No retry loop of streambolt's around these calls: the SDK's own retries, so that one
  // transient error does not fail a probe.
  const kinesis = makeKinesisClient(5);
  try {
    return { status: await streamStatus({ kinesis, store, stream, maxAgeMs }) };
  } catch (error) {
    const explained = explainError(error);
    const fromKinesis = serviceOf(error) === "Kinesis";
    if (!fromKinesis || !(explained instanceof ConfigurationError)) throw error;
    return { status: await streamStatus({ store, stream, maxAgeMs }), unreachable: explained };
  } finally {
    kinesis.destroy();
  }
}

/** A stderr line per shard whose point trails by more than half the retention. */
function warnRetention(status: StreamStatus, logger: CliLogger): void {
  for (const s of status.shards.filter((s) => s.retentionAtRisk)) {
    logger.warn("snapshot trails the shard by more than half the stream's retention", {
      shard: s.shardId,
      trailMs: s.trailMs,
      ageMs: s.ageMs,
      lastArrivalAt: s.lastArrivalAt?.toISOString(),
      retentionHours: status.retentionHours,
    });
  }
}

/** Why the check failed, naming each failing shard. */
function failureMessage(status: StreamStatus, maxAge: string, storeUrl: string): string {
  if (status.shards.length === 0) {
    return `Cannot pass the status check of stream "${status.stream}" as Kinesis cannot be reached and the store holds no snapshot of it: current value is ${storeUrl}`;
  }
  const reasons = status.shards.flatMap((s) =>
    s.problems.map((p) => {
      if (p === "missing") return `${s.shardId} has no snapshot`;
      if (p === "stale") {
        const age = s.ageMs === undefined
          ? `${s.shardId}'s snapshot has no known age`
          : `${s.shardId}'s snapshot is ${formatDuration(s.ageMs)} old (over ${maxAge})`;
        const waited = s.waitingSince && status.checkedAt.getTime() - s.waitingSince.getTime();
        return waited ? `${age} with records waiting ${formatDuration(waited)}` : age;
      }
      return `${s.shardId}'s snapshot trails it by ${
        formatDuration(s.trailMs ?? s.ageMs)
      } (over half the ${status.retentionHours} h retention)`;
    })
  );
  const failing = status.shards.filter((s) => s.problems.length > 0).map((s) => s.shardId);
  return `Cannot pass the status check of stream "${status.stream}" as ${
    reasons.join(", ")
  }: current value is "${failing.join(",")}"`;
}

/** The table: one row per shard. */
function printTable(status: StreamStatus): void {
  const unknown = (s: ShardStatus, value: string | undefined) =>
    s.sequenceNumber === undefined ? "-" : value ?? "?";
  outTable(
    [
      "SHARD",
      "STATE",
      "SEQUENCE",
      "KIND",
      "CHAIN",
      "AGE",
      "APPLIED",
      "FINAL",
      "TRAIL",
      "RETENTION",
      "CHECK",
    ],
    status.shards.map((s) => [
      s.shardId,
      s.closed ? "closed" : status.kinesis ? "open" : "?",
      s.sequenceNumber ?? "-",
      s.kind ?? "-",
      s.chainLength ? String(s.chainLength) : "-",
      unknown(s, s.ageMs === undefined ? undefined : formatDuration(s.ageMs)),
      unknown(s, s.recordsApplied?.toString()),
      s.sequenceNumber === undefined ? "-" : s.final ? "yes" : "no",
      // A final point trails nothing; an empty one (no record applied) has nothing to trail by.
      s.final || (s.sequenceNumber === BOOTSTRAP_SEQUENCE && s.trailMs === undefined)
        ? "-"
        : unknown(s, s.trailMs === undefined ? undefined : formatDuration(s.trailMs)),
      s.sequenceNumber === undefined || s.final
        ? "-"
        : s.retentionAtRisk
        ? "at risk"
        : status.kinesis
        ? "ok"
        : "?",
      checkText(s),
    ]),
  );
}

function checkText(s: ShardStatus): string {
  if (s.problems.length === 0) {
    if (s.sequenceNumber === undefined) return "ok (closed)";
    return s.recordsWaiting === false ? "ok (idle)" : "ok";
  }
  return s.problems.map((p) =>
    p === "missing" ? "no snapshot" : p === "stale" ? "stale" : "retention at risk"
  ).join(", ");
}

/** The JSON output: dates as ISO strings, and every field present (`null` when unknown). */
function statusJson(status: StreamStatus, store: string): Record<string, unknown> {
  const iso = (d: Date | undefined) => d?.toISOString() ?? null;
  return {
    stream: status.stream,
    store,
    checkedAt: iso(status.checkedAt),
    ok: status.ok,
    maxAgeMs: status.maxAgeMs,
    kinesis: status.kinesis,
    retentionHours: status.retentionHours ?? null,
    shards: status.shards.map((s) => ({
      shardId: s.shardId,
      closed: s.closed || status.kinesis ? s.closed : null,
      parentShards: s.parentShards,
      sequenceNumber: s.sequenceNumber ?? null,
      kind: s.kind ?? null,
      final: s.final,
      key: s.key ?? null,
      size: s.size ?? null,
      lastModified: iso(s.lastModified),
      ageMs: s.ageMs ?? null,
      chainLength: s.chainLength ?? null,
      recordsApplied: s.recordsApplied ?? null,
      recordsSkipped: s.recordsSkipped ?? null,
      acceptedGaps: s.acceptedGaps ?? null,
      lastArrivalAt: iso(s.lastArrivalAt),
      trailMs: s.trailMs ?? null,
      recordsWaiting: s.recordsWaiting ?? null,
      waitingSince: iso(s.waitingSince),
      retentionAtRisk: s.retentionAtRisk,
      problems: s.problems,
    })),
  };
}
