/**
 * The CLI's logger: progress and logs go to stderr, in one of two formats (`--log-format`):
 *
 * - `text` (the default): on a terminal, `streambolt: message key=value` lines, and progress as
 *   one line rewritten in place; otherwise every line is a plain `time=... level=... msg=...
 *   key=value` record for log collectors.
 * - `json`: every line is one JSON object, `{"time","level","msg", ...fields}`, terminal or
 *   not: progress is logged as objects, never rewritten in place, and the closing error line
 *   is an object too (`level` "error", `error` the error's name).
 *
 * No colours are used, so `NO_COLOR` holds trivially.
 *
 * @module
 */
import type { LogFields, Logger } from "../logger.ts";
import type { SnapshotProgress } from "../shard_snapshotter.ts";
import { UsageError } from "./_common.ts";

/** A logger that can also show snapshot progress. */
export interface CliLogger extends Logger {
  /** Shows a snapshot run's progress. */
  progress(p: SnapshotProgress): void;
  /** Ends a progress line, if one is shown. */
  endProgress(): void;
}

/** How log lines are written: see the module doc. */
export type LogFormat = "text" | "json";

/** The log levels, including the CLI's closing `error` line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Progress lines, when they are records rather than a line rewritten in place, come at least
 * this often during a long phase (and at every change of phase). */
const PROGRESS_EVERY_MS = 10_000;

const encoder = new TextEncoder();
let format: LogFormat = "text";

function write(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

/**
 * Reads `--log-format FORMAT` (or `--log-format=FORMAT`) from a command line and makes it the
 * format of every logger and of the closing error line of this process.
 *
 * @throws {UsageError} When the format is not `text` or `json`.
 */
export function useLogFormatOf(args: string[]): LogFormat {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") break;
    if (args[i] === "--log-format") value = args[i + 1];
    else if (args[i].startsWith("--log-format=")) value = args[i].slice("--log-format=".length);
  }
  if (value !== undefined && value !== "text" && value !== "json") {
    throw new UsageError(
      `Cannot use --log-format as it must be text or json: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  format = value ?? "text";
  return format;
}

function quote(value: string): string {
  return /^[A-Za-z0-9_.:\/@+-]*$/.test(value) && value !== "" ? value : JSON.stringify(value);
}

function fieldsText(fields?: LogFields): string {
  if (!fields) return "";
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}=${quote(String(v))}`)
    .join("");
}

/** One JSON log line. A field named like a reserved key is kept as `fields.<name>`. */
export function jsonLine(
  level: LogLevel,
  message: string,
  fields?: Record<string, unknown>,
): string {
  const record: Record<string, unknown> = { time: new Date().toISOString(), level, msg: message };
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value === undefined) continue;
    record[Object.hasOwn(record, key) ? `fields.${key}` : key] = value;
  }
  return JSON.stringify(record) + "\n";
}

/** One log line in the current format; `tty` picks the terminal form of `text`. */
function line(level: LogLevel, message: string, fields: LogFields | undefined, tty: boolean) {
  if (format === "json") return jsonLine(level, message, fields);
  if (tty) return `streambolt: ${message}${fieldsText(fields)}\n`;
  return `time=${new Date().toISOString()} level=${level} msg=${JSON.stringify(message)}${
    fieldsText(fields)
  }\n`;
}

/**
 * Writes the line a failed command ends with: `streambolt: error: MESSAGE` (and, with
 * `verbose`, the stack) in text; one object with `level` "error" in json.
 */
export function writeError(error: unknown, verbose: boolean): void {
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/\s*\n\s*/g, " ");
  const stack = verbose ? (error as Error)?.stack : undefined;
  if (format === "json") {
    const name = error instanceof Error ? error.name : undefined;
    write(jsonLine("error", message, { error: name, stack }));
    return;
  }
  write(`streambolt: error: ${message}\n`);
  if (verbose) write(`${stack ?? ""}\n`);
}

/** Makes the CLI logger, in the format `useLogFormatOf` set (text by default). */
export function cliLogger(options: { quiet?: boolean; verbose?: boolean }): CliLogger {
  // The terminal form only in text: json lines are never rewritten.
  const tty = format === "text" && Deno.stderr.isTerminal();
  let progressShown = false;
  const clear = () => {
    if (progressShown) write("\r\x1b[K");
    progressShown = false;
  };
  const log = (level: LogLevel, message: string, fields?: LogFields) => {
    if (level === "debug" && !options.verbose) return;
    if (level === "info" && options.quiet) return;
    clear();
    write(line(level, message, fields, tty));
  };
  const records = progressRecords((fields) => log("info", "progress", fields));
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    progress(p) {
      if (options.quiet) return;
      if (!tty) return records(p);
      const behind = p.millisBehindLatest !== undefined
        ? `, ${p.millisBehindLatest} ms behind`
        : "";
      const bytes = p.bytesUploaded !== undefined ? `, ${p.bytesUploaded} bytes uploaded` : "";
      write(
        `\r\x1b[K${p.shardId}: ${p.phase}, ${p.recordsApplied} records applied${behind}${bytes}`,
      );
      progressShown = true;
    },
    endProgress: clear,
  };
}

/** Progress as log records: each shard's changes of phase, and during a long phase a record
 * every {@linkcode PROGRESS_EVERY_MS}. */
function progressRecords(log: (fields: LogFields) => void): (p: SnapshotProgress) => void {
  const last = new Map<string, { phase: string; at: number }>();
  return (p) => {
    const seen = last.get(p.shardId);
    const now = Date.now();
    if (seen && seen.phase === p.phase && now - seen.at < PROGRESS_EVERY_MS) return;
    last.set(p.shardId, { phase: p.phase, at: now });
    log({
      shard: p.shardId,
      phase: p.phase,
      records: p.recordsApplied,
      sequenceNumber: p.sequenceNumber,
      millisBehindLatest: p.millisBehindLatest,
      bytesUploaded: p.bytesUploaded,
    });
  };
}
