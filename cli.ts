/**
 * The streambolt command line: `streambolt <command> [options]`. It parses arguments, runs
 * the command (loading only what that command needs) and maps errors to one line on stderr
 * and an exit status: 0 success, 1 failure, 2 bad usage.
 *
 * From JSR, run it with the flags of the `cli` task in this package's deno.json (the same flags
 * the release binaries carry): the network for AWS endpoints, instance and container
 * credentials and local emulators; reads of the working directory, the shared AWS config and
 * the EKS token folders; writes to the working directory only; the environment the AWS SDK
 * reads. To reach another S3-compatible host or directory, add it to the matching flag.
 *
 * ```sh
 * deno run --v8-flags=--optimize-for-size \
 *   --allow-net='*.amazonaws.com,*.amazonaws.com.cn,*.api.aws,169.254.169.254,169.254.170.2,169.254.170.23,127.0.0.1,localhost' \
 *   --allow-read=".,$HOME/.aws,/var/run/secrets/eks.amazonaws.com/serviceaccount,/var/run/secrets/pods.eks.amazonaws.com/serviceaccount" \
 *   --allow-write=. \
 *   --allow-env='AWS_*,HOME,USERPROFILE,HOMEPATH,HOMEDRIVE,_X_AMZN_TRACE_ID,JOB_COMPLETION_INDEX,NO_COLOR,TERM' \
 *   --allow-sys=osRelease \
 *   jsr:@streambolt/streambolt/cli snapshot --stream orders --store s3://bucket/snaps
 * ```
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import { explainError, isUsageError, out } from "./src/cli/_common.ts";
import { useLogFormatOf, writeError } from "./src/cli/_log.ts";

/** The version of this CLI. */
export const VERSION: string = denoJson.version;

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  snapshot: {
    summary: "bring shards' snapshots up to date and publish them",
    load: () => import("./src/cli/snapshot.ts"),
  },
  list: {
    summary: "list the snapshots of a stream or shard",
    load: () => import("./src/cli/list.ts"),
  },
  latest: {
    summary: "show the newest snapshot of a shard",
    load: () => import("./src/cli/latest.ts"),
  },
  download: {
    summary: "download and verify a snapshot as a SQLite file",
    load: () => import("./src/cli/download.ts"),
  },
  inspect: {
    summary: "look inside snapshot files (read-only)",
    load: () => import("./src/cli/inspect.ts"),
  },
  replicate: {
    summary: "keep one plain SQLite file per shard current, for readers in any language",
    load: () => import("./src/cli/replicate.ts"),
  },
  status: {
    summary: "check that every shard's snapshot is fresh (for alerts and probes)",
    load: () => import("./src/cli/status.ts"),
  },
  gc: {
    summary: "delete old snapshots, never a shard's newest",
    load: () => import("./src/cli/gc.ts"),
  },
};

interface CommandModule {
  run(args: string[]): Promise<number>;
}

const HELP = `streambolt ${VERSION}: snapshots of Kinesis shards as SQLite files in S3

Usage: streambolt <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`).join("\n")}

Run "streambolt <command> --help" for a command's options. Every command takes
--log-format text|json: with json, each stderr line (logs, progress, the error a failed
command ends with) is one JSON object with time, level, msg and the line's fields.
AWS settings come from the standard chain: AWS_REGION, AWS_PROFILE, credentials, and
AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL_S3 for other endpoints.`;

/**
 * Runs the CLI with the given arguments.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status.
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    out(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-V") {
    out(`streambolt ${VERSION}`);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  try {
    useLogFormatOf(rest);
    if (!entry) {
      throw new (await import("./src/cli/_common.ts")).UsageError(
        `Cannot run command as it is unknown (see streambolt --help): current value is ${
          JSON.stringify(command)
        }`,
      );
    }
    return await (await entry.load()).run(rest);
  } catch (error) {
    writeError(explainError(error), args.includes("--verbose") || args.includes("-v"));
    return isUsageError(error) ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
  // The process ends when its work does, not by Deno.exit(): with OpenTelemetry on (OTEL_DENO),
  // Deno 2.9's Deno.exit() hangs now and then flushing its exporter (about one exit in five);
  // a natural end flushes too, and does not. Whatever a command left open (an idle socket)
  // must not keep it alive, though: past a grace period, it exits.
  Deno.unrefTimer(setTimeout(() => Deno.exit(Deno.exitCode), 5_000));
}
