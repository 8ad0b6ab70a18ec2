/**
 * What every subcommand shares: argument parsing with one-line usage errors, value parsers,
 * and output to stdout (tables or JSON).
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigurationError, InvalidArgumentError } from "../errors.ts";
import { assertName } from "../snapshot_key.ts";

/** A mistake in how the CLI was called; exits with status 2. */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, naming the bad value.
   * @param options The underlying error, as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** The CLI's permissions do not cover a path or host it was asked to use; exits with status 1. */
export class PermissionError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was refused, naming the path or host.
   * @param options Deno's `NotCapable` error, as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermissionError";
  }
}

/** The options every command accepts. */
export const COMMON_OPTIONS = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
  // Read before the command runs, by useLogFormatOf() in _log.ts; accepted by every command.
  "log-format": { type: "string" },
} as const;

/** Help text for `--log-format`, for the commands that log. */
export const LOG_HELP =
  `  --log-format text|json      stderr as text (default) or one JSON object per line`;

/** Parses a command's arguments strictly; unknown or malformed flags become usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
): {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
} {
  // "--keep -1" would be refused as ambiguous without naming the value: join such a negative
  // number to its option, so the value check can say what is wrong with it.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : undefined;
    if (name && options[name]?.type === "string" && /^-\d/.test(args[i + 1] ?? "")) {
      joined.push(`${args[i]}=${args[++i]}`);
    } else joined.push(args[i]);
  }
  try {
    const { values, positionals } = parseArgs({
      args: joined,
      options: { ...COMMON_OPTIONS, ...options },
      strict: true,
      allowPositionals,
    });
    return {
      values: values as Record<string, string | boolean | string[] | undefined>,
      positionals,
    };
  } catch (error) {
    const message = (error as Error).message.split("\n")[0].replace(/\. To specify.*$/, "");
    throw new UsageError(`Cannot parse arguments of "${command}": ${message}`);
  }
}

/** A required string flag. */
export function required(
  values: Record<string, unknown>,
  name: string,
  command: string,
): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") {
    throw new UsageError(
      `Cannot run "${command}" as --${name} is required: current value is ${
        JSON.stringify(value ?? null)
      }`,
    );
  }
  return value;
}

/** A whole number flag within bounds. */
export function wholeNumber(
  name: string,
  value: string | undefined,
  min: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `Cannot use --${name} as it must be a whole number of at least ${min}: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return n;
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parses a duration like `90s`, `15m`, `12h`, `7d`, `2w` (or `1h30m`) into ms. */
export function parseDuration(name: string, value: string): number {
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value) {
    throw new UsageError(
      `Cannot use --${name} as it is not a duration like 30m, 12h or 7d: current value is ${
        JSON.stringify(value)
      }`,
    );
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]], 0);
}

/** A duration for people: `850ms`, `42s`, `4m12s`, `3h05m`, `2d04h`. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return "-";
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1_000);
  const two = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3_600) % 24)}h`;
}

/** Writes a line to stdout. */
export function out(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

/** Writes a value as indented JSON to stdout. */
export function outJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** Writes rows as a left-aligned table with a header. */
export function outTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
  out(line(headers));
  for (const row of rows) out(line(row));
}

/** Human-readable bytes. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

/** Whether an error is the caller's fault (exit 2) rather than a failure (exit 1). */
export function isUsageError(error: unknown): boolean {
  return error instanceof UsageError || error instanceof InvalidArgumentError;
}

/** `--stream`, required and checked. */
export function streamArg(values: Record<string, unknown>, command: string): string {
  return assertName("stream", required(values, "stream", command));
}

/** `--shard`, checked; required when `needed`, else `undefined` when not given. */
export function shardArg(
  values: Record<string, unknown>,
  command: string,
  needed: true,
): string;
/** `--shard`, checked; `undefined` when not given. */
export function shardArg(
  values: Record<string, unknown>,
  command: string,
  needed?: false,
): string | undefined;
export function shardArg(
  values: Record<string, unknown>,
  command: string,
  needed = false,
): string | undefined {
  if (!needed && values.shard === undefined) return undefined;
  return assertName("shard", required(values, "shard", command));
}

/** An AWS service the CLI calls. */
export type AwsService = "Kinesis" | "S3";

const services = new WeakMap<object, AwsService>();

/** Notes that `error` came from a call to `service` (the CLI's clients note each, in _aws.ts). */
export function noteService(error: unknown, service: AwsService): void {
  if (typeof error === "object" && error !== null) services.set(error, service);
}

/** The service an error (or an error it wraps, as `cause`) came from, when noted. */
export function serviceOf(error: unknown): AwsService | undefined {
  for (const e of causes(error)) {
    const service = services.get(e);
    if (service) return service;
  }
  return undefined;
}

/** `error`, then its `cause`, and so on (at most 10 deep). */
function causes(error: unknown): object[] {
  const chain: object[] = [];
  for (let e = error; typeof e === "object" && e !== null && chain.length < 10;) {
    chain.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return chain;
}

/** Deno's message when a permission flag does not cover what was asked for. */
const NOT_CAPABLE = /^Requires (\w+) access to "?([^"]*?)"?, run again with the (--allow-\w+) flag/;

/** What each permission of the cli task covers, for the line that says one was refused. */
const COVERS: Record<string, string> = {
  read: "reads only under the working directory and ~/.aws",
  write: "writes only under the working directory",
  net: "reaches only AWS endpoints and loopback",
};

/** Deno's "run again with the --allow-... flag" (no help for a compiled binary) in the house
 * style: what was refused, what the CLI's permissions cover, and what to do. */
function explainPermission(e: Error): PermissionError | undefined {
  const match = NOT_CAPABLE.exec(e.message);
  if (!match) return undefined;
  const [, kind, target, flag] = match;
  const covers = COVERS[kind] ?? `has no ${kind} permission for it`;
  return new PermissionError(
    `Cannot ${
      kind === "net" ? "reach" : kind
    } ${target} as the CLI ${covers} (work from a directory that holds it, or add it to ${flag} when running from source): current value is ${
      JSON.stringify(target)
    }`,
    { cause: e },
  );
}

/** How a connection that never got an answer shows in Node's errors. */
const UNREACHABLE = /\b(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)\b/;

/**
 * An error of the AWS SDK that means the environment is not set up (no region, no
 * credentials, an endpoint where nothing answers or that does not answer in time) as a
 * {@linkcode ConfigurationError} naming what is missing and how to set it; a
 * `ConfigurationError` anywhere in the `cause` chain as it is; any other error unchanged.
 */
export function explainError(error: unknown): unknown {
  const service = serviceOf(error);
  for (const e of causes(error)) {
    if (e instanceof ConfigurationError) return e;
    // Deno's own line, unless a wrapper already says in the house style what was refused.
    if (e instanceof Deno.errors.NotCapable) return e === error && explainPermission(e) || error;
    const explained = explainOne(e as Error & { code?: string }, service);
    if (explained) return explained;
  }
  return error;
}

function explainOne(
  e: Error & { code?: string },
  service: AwsService | undefined,
): ConfigurationError | undefined {
  const what = service ?? "AWS";
  const message = String(e.message ?? "");
  const options = { cause: e };
  if (/^Region is missing|^Invalid region/.test(message)) {
    return new ConfigurationError(
      "region",
      `Cannot reach ${what} as no AWS region is set (set AWS_REGION, or a region for the profile in ~/.aws/config): current value is ${
        JSON.stringify(env("AWS_REGION") ?? "")
      }`,
      options,
    );
  }
  if (e.name === "CredentialsProviderError" || /^Could not load credentials/.test(message)) {
    return new ConfigurationError(
      "credentials",
      `Cannot reach ${what} as no AWS credentials were found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE for a profile in ~/.aws, or run with an instance, task or pod role): current value is profile ${
        JSON.stringify(env("AWS_PROFILE") ?? "default")
      }`,
      options,
    );
  }
  const unreachable = UNREACHABLE.test(e.code ?? "") || UNREACHABLE.test(message);
  const timedOut = e.name === "TimeoutError" || e.code === "ETIMEDOUT";
  if (!unreachable && !timedOut) return undefined;
  const variable = service ? `AWS_ENDPOINT_URL_${service.toUpperCase()}` : "AWS_ENDPOINT_URL";
  const endpoint = (service && env(variable)) ?? env("AWS_ENDPOINT_URL");
  const reason = unreachable
    ? "nothing answers at its endpoint"
    : "its endpoint did not answer in time";
  const fix = endpoint
    ? `set ${variable} to an endpoint that answers, or unset it to use AWS's`
    : `check the network, a proxy, and AWS_REGION, or set ${variable}`;
  return new ConfigurationError(
    "endpoint",
    `Cannot reach ${what} as ${reason} (${fix}): current value is ${
      endpoint ?? `the endpoint of region ${JSON.stringify(env("AWS_REGION") ?? "")}`
    }`,
    options,
  );
}

/** An environment variable, `undefined` when unset, empty or not readable. */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}
