import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import plugin, { MAX_FUNCTION_LINES } from "../.ci/lint_plugin.ts";

const IN_SRC = fileURLToPath(new URL("../src/example.ts", import.meta.url));
const IN_TESTS = fileURLToPath(new URL("./example_test.ts", import.meta.url));

/** `lines` lines of statements, each on its own line. */
function body(lines: number): string {
  return Array.from({ length: lines }, (_, i) => `  console.log(${i});\n`).join("");
}

/** Source that defines, in the given shape, a function spanning exactly `lines` lines. */
const SHAPES: Record<string, (lines: number) => string> = {
  "function declaration": (n) => `export function long(): void {\n${body(n - 2)}}\n`,
  "function expression": (n) => `export const f = function long(): void {\n${body(n - 2)}};\n`,
  "arrow function": (n) => `export const long = (): void => {\n${body(n - 2)}};\n`,
  "class method": (n) => `export class C {\n  long(): void {\n${body(n - 2)}  }\n}\n`,
  "object method": (n) => `export const o = {\n  long() {\n${body(n - 2)}  },\n};\n`,
};

function lint(fileName: string, source: string): Deno.lint.Diagnostic[] {
  return Deno.lint.runPlugin(plugin, fileName, source)
    .filter((d) => d.id === "streambolt/max-function-lines");
}

Deno.test("streambolt/max-function-lines reports a 61-line function in src/", async (t) => {
  for (const [shape, source] of Object.entries(SHAPES)) {
    await t.step(shape, () => {
      const diagnostics = lint(IN_SRC, source(MAX_FUNCTION_LINES + 1));
      assert.equal(diagnostics.length, 1, JSON.stringify(diagnostics));
      assert.equal(
        diagnostics[0].message,
        `Function "long" spans ${
          MAX_FUNCTION_LINES + 1
        } lines, over the limit of ${MAX_FUNCTION_LINES}`,
      );
    });
  }
});

Deno.test("streambolt/max-function-lines accepts a 60-line function in src/", async (t) => {
  assert.equal(MAX_FUNCTION_LINES, 60);
  for (const [shape, source] of Object.entries(SHAPES)) {
    await t.step(shape, () => {
      assert.deepEqual(lint(IN_SRC, source(MAX_FUNCTION_LINES)), []);
    });
  }
});

Deno.test("streambolt/max-function-lines counts a multi-line signature", () => {
  const source = `export function long(\n  a: number,\n  b: number,\n): void {\n${
    body(MAX_FUNCTION_LINES - 4)
  }}\n`;
  assert.equal(source.split("\n").length - 1, MAX_FUNCTION_LINES + 1);
  assert.equal(lint(IN_SRC, source).length, 1);
});

Deno.test("streambolt/max-function-lines reports a long inner function on its own", () => {
  const inner = `  const inner = () => {\n${body(MAX_FUNCTION_LINES - 1)}  };\n`;
  const source = `export function outer(): void {\n${inner}}\n`;
  assert.deepEqual(
    lint(IN_SRC, source).map((d) => d.message.split(" spans")[0]),
    ['Function "outer"', 'Function "inner"'],
  );
});

Deno.test("streambolt/max-function-lines ignores files outside src/", () => {
  assert.deepEqual(lint(IN_TESTS, SHAPES["function declaration"](200)), []);
});
