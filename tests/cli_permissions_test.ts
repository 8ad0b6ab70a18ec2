import assert from "node:assert/strict";
import { permissionFlags, tasks } from "./support/cli.ts";

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
