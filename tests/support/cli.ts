/**
 * Runs the CLI the way users do: `deno run` with exactly the permission flags of the `cli`
 * task in deno.json (the flags `deno task compile` bakes into the binary), in a given
 * working directory.
 *
 * @module
 */
import { fromFileUrl } from "./paths.ts";
import { DENO } from "./emulators.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const CONFIG = `${ROOT}deno.json`;

/** The task definitions from deno.json. */
export async function tasks(): Promise<Record<string, string>> {
  return JSON.parse(await Deno.readTextFile(CONFIG)).tasks;
}

/** The runtime flags of a task command (`deno run FLAGS cli.ts` / `deno compile FLAGS ...`):
 * permissions and V8 flags. */
export function permissionFlags(task: string): string[] {
  return task.split(/\s+/)
    .filter((w) =>
      w.startsWith("--allow-") || w.startsWith("--deny-") || w.startsWith("--v8-flags=")
    )
    .map((w) => w.replaceAll("$HOME", Deno.env.get("HOME") ?? ""));
}

/** The result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `streambolt ARGS` in `cwd`, run as `deno run` with the CLI task's flags. */
async function cliCommand(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Deno.Command> {
  const flags = permissionFlags((await tasks()).cli);
  return new Deno.Command(DENO, {
    args: ["run", "--quiet", "--config", CONFIG, ...flags, `${ROOT}cli.ts`, ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `streambolt ARGS` in `cwd` with the CLI task's flags. */
export async function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  const output = await (await cliCommand(args, options)).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Starts `streambolt ARGS` in `cwd` with the CLI task's flags, for tests that kill it. */
export async function spawnCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Deno.ChildProcess> {
  return (await cliCommand(args, options)).spawn();
}
