/**
 * Runs the CLI with the cli task's permissions in an environment of the test's own: none of
 * the machine's AWS variables, HOME an empty folder (no shared AWS config or credentials
 * file), no instance metadata lookups; only what Deno itself needs is passed on.
 *
 * @module
 */
import { permissionFlags, tasks } from "./cli.ts";
import { DENO } from "./emulators.ts";
import { fromFileUrl } from "./paths.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));

/** The result of one CLI run. */
export interface CleanResult {
  code: number;
  stdout: string;
  stderr: string;
}

let denoDir: Promise<string> | undefined;

/** Deno's cache folder, so that the CLI finds its packages with HOME moved. */
function cacheDir(): Promise<string> {
  return denoDir ??= (async () => {
    const out = await new Deno.Command(DENO, { args: ["info", "--json"], stdout: "piped" })
      .output();
    return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
  })();
}

/**
 * `streambolt ARGS` in `home` (also HOME), with `env` and nothing else of the machine's
 * environment but PATH.
 */
export async function runCliCleanEnv(
  args: string[],
  options: { home: string; env: Record<string, string> },
): Promise<CleanResult> {
  const { home } = options;
  const flags = permissionFlags((await tasks()).cli).map((f) =>
    f.replaceAll(Deno.env.get("HOME") ?? "", home)
  );
  const output = await new Deno.Command(DENO, {
    args: ["run", "--quiet", "--config", `${ROOT}deno.json`, ...flags, `${ROOT}cli.ts`, ...args],
    cwd: home,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      DENO_DIR: await cacheDir(),
      HOME: home,
      NO_COLOR: "1",
      // No instance metadata here: without this the credential chain waits for it to time out.
      AWS_EC2_METADATA_DISABLED: "true",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A port on 127.0.0.1 where nothing listens (just closed). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
