/**
 * The CLI's logger: progress and logs go to stderr. On a terminal, progress is one line
 * rewritten in place; otherwise every line is a plain `key=value` record for log collectors.
 * No colours are used, so `NO_COLOR` holds trivially.
 *
 * @module
 */
import type { LogFields, Logger } from "../logger.ts";
import type { SnapshotProgress } from "../snapshotter.ts";

/** A logger that can also show snapshot progress. */
export interface CliLogger extends Logger {
  /** Shows a snapshot run's progress. */
  progress(p: SnapshotProgress): void;
  /** Ends a progress line, if one is shown. */
  endProgress(): void;
}

const encoder = new TextEncoder();

function write(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
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

/** Makes the CLI logger. */
export function cliLogger(options: { quiet?: boolean; verbose?: boolean }): CliLogger {
  const tty = Deno.stderr.isTerminal();
  let progressShown = false;
  const clear = () => {
    if (progressShown) write("\r\x1b[K");
    progressShown = false;
  };
  const log = (level: string, message: string, fields?: LogFields) => {
    if (level === "debug" && !options.verbose) return;
    if (level === "info" && options.quiet) return;
    clear();
    if (tty) write(`streambolt: ${message}${fieldsText(fields)}\n`);
    else {
      write(
        `time=${new Date().toISOString()} level=${level} msg=${JSON.stringify(message)}${
          fieldsText(fields)
        }\n`,
      );
    }
  };
  let lastPhase = "";
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    progress(p) {
      if (options.quiet) return;
      if (tty) {
        const behind = p.millisBehindLatest !== undefined
          ? `, ${p.millisBehindLatest} ms behind`
          : "";
        const bytes = p.bytesUploaded !== undefined ? `, ${p.bytesUploaded} bytes uploaded` : "";
        write(
          `\r\x1b[K${p.shardId}: ${p.phase}, ${p.recordsApplied} records applied${behind}${bytes}`,
        );
        progressShown = true;
      } else if (p.phase !== lastPhase) {
        log("info", "progress", {
          shard: p.shardId,
          phase: p.phase,
          records: p.recordsApplied,
          millisBehindLatest: p.millisBehindLatest,
        });
      }
      lastPhase = p.phase;
    },
    endProgress: clear,
  };
}
