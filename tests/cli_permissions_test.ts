import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, permissionFlags, runCli, tasks } from "./support/cli.ts";

/** The shell commands in the ```sh blocks of cli.ts's module doc, continuation lines joined. */
async function docCommands(): Promise<string[]> {
  const source = await Deno.readTextFile(new URL("../cli.ts", import.meta.url));
  const doc = source.slice(source.indexOf("/**"), source.indexOf("*/"));
  const lines = doc.split("\n").map((l) => l.replace(/^\s*\*\s?/, ""));
  const commands: string[] = [];
  let inSh = false;
  let current = "";
  for (const line of lines) {
    if (line.startsWith("```")) {
      inSh = !inSh && line.trim() === "```sh";
      continue;
    }
    if (!inSh) continue;
    current += line.endsWith("\\") ? line.slice(0, -1) : line;
    if (!line.endsWith("\\")) {
      if (current.trim() !== "") commands.push(current.trim());
      current = "";
    }
  }
  return commands;
}

/** A shell command's words with quotes removed (the doc quotes globs for zsh). */
function words(command: string): string[] {
  return command.split(/\s+/).map((w) => w.replaceAll(/['"]/g, ""));
}

Deno.test("cli.ts's module doc runs the CLI from JSR with exactly the cli task's flags", async () => {
  const fromJsr = (await docCommands()).filter((c) => c.includes("jsr:@streambolt/streambolt/cli"));
  assert.ok(fromJsr.length > 0, "the doc shows how to run the CLI from JSR");
  const expected = permissionFlags((await tasks()).cli);
  for (const command of fromJsr) {
    const w = words(command);
    assert.ok(!w.includes("-P") && !w.some((x) => x.startsWith("--permission-set")), command);
    assert.deepEqual(permissionFlags(w.join(" ")), expected, command);
  }
});

Deno.test("no task relies on a deno.json permission set", async () => {
  // Deno resolves a permission set's relative paths against deno.json's directory (and
  // `deno compile` bakes them in as absolute paths of the build machine), expands neither
  // $HOME nor ~, and warns on stderr on every run: the CLI's "." must be the working directory.
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { permissions?: unknown; tasks: Record<string, string> };
  for (const [name, task] of Object.entries(config.tasks)) {
    assert.doesNotMatch(task, /(^|\s)(-P|--permission-set)(=|\s|$)/, `task ${name}`);
  }
});

/** The one stderr line of a failed run, asserting exit status 2 (bad usage). */
function usageErrorLine(result: CliResult): string {
  assert.equal(result.code, 2, `exit ${result.code}\nstderr: ${result.stderr}`);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], /^streambolt: error: /);
  return lines[0];
}

/** Runs `streambolt snapshot` with a file store in a fresh working directory. */
async function snapshotWithGenerator(generator: string, cwd: string): Promise<CliResult> {
  return await runCli(
    ["snapshot", "--stream", "orders", "--store", "./snaps", "--generator", generator],
    { cwd },
  );
}

Deno.test("snapshot --generator outside the readable directory says read permission was denied", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-cwd-" });
  const outside = await Deno.makeTempDir({ prefix: "streambolt-outside-" });
  try {
    const generator = join(outside, "gen.ts");
    await Deno.writeTextFile(generator, "export default { onRecords() {} };\n");
    const line = usageErrorLine(await snapshotWithGenerator(generator, cwd));
    assert.ok(line.includes(JSON.stringify(generator)), line);
    assert.match(line, /read permission/);
    assert.match(line, /--allow-read/);
    assert.doesNotMatch(line, /not .*an existing file/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("snapshot --generator naming a missing file says it does not exist", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-cwd-" });
  try {
    const line = usageErrorLine(await snapshotWithGenerator("./nope.ts", cwd));
    assert.ok(line.includes('"./nope.ts"'), line);
    assert.match(line, /not kv, log or an existing file/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("snapshot --generator naming a file that is no module says so, naming it", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-cwd-" });
  try {
    await Deno.writeTextFile(join(cwd, "notes.md"), "# not a generator\n");
    const line = usageErrorLine(await snapshotWithGenerator("./notes.md", cwd));
    assert.match(line, /^streambolt: error: Cannot load generator as .+: current value is /);
    assert.ok(line.includes('"./notes.md"'), line);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("a store outside the readable directory gets one line in the house style", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "streambolt-cwd-" });
  const outside = await Deno.makeTempDir({ prefix: "streambolt-outside-" });
  try {
    const result = await runCli(["list", "--stream", "orders", "--store", outside], { cwd });
    assert.equal(result.code, 1, `exit ${result.code}\nstderr: ${result.stderr}`);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /^streambolt: error: Cannot read .+ as .+: current value is /);
    assert.ok(lines[0].includes(JSON.stringify(outside)), lines[0]);
    assert.match(lines[0], /--allow-read/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});
