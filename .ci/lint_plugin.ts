/**
 * streambolt's own lint rules, loaded by `deno lint` through `lint.plugins` in deno.json (so
 * `deno task check` and CI enforce them).
 *
 * - `streambolt/max-function-lines`: no function under `src/` spans more than
 *   {@linkcode MAX_FUNCTION_LINES} lines, counted from the line it starts on (its name, for a
 *   method or a function assigned to a variable) to the line of its closing brace. A long
 *   procedure becomes named phases, each short enough to hold in the head.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** The most lines a function in `src/` may span. */
export const MAX_FUNCTION_LINES = 60;

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/** The node whose span is the function's: the method, property or variable it defines. */
function definition(node: FunctionNode): Deno.lint.Node {
  const parent = node.parent;
  switch (parent.type) {
    case "MethodDefinition":
    case "Property":
    case "PropertyDefinition":
      return parent.value === node ? parent : node;
    case "VariableDeclarator":
      return parent.init === node ? parent : node;
    default:
      return node;
  }
}

/** A readable name for the report: `name`, `Class.method`, or "anonymous function". */
function nameOf(node: FunctionNode, defined: Deno.lint.Node): string {
  if (node.id) return node.id.name;
  if (defined.type === "VariableDeclarator" && defined.id.type === "Identifier") {
    return defined.id.name;
  }
  if (
    (defined.type === "MethodDefinition" || defined.type === "Property" ||
      defined.type === "PropertyDefinition") && !defined.computed
  ) {
    const key = defined.key;
    if (key.type === "Identifier") return key.name;
    if (key.type === "PrivateIdentifier") return `#${key.name}`;
    if (key.type === "Literal" && typeof key.value === "string") return key.value;
  }
  return "anonymous function";
}

/** Line numbers (1-based) of offsets into `text`. */
function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return (offset) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (starts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  };
}

const maxFunctionLines: Deno.lint.Rule = {
  create(context) {
    if (!context.filename.startsWith(SRC)) return {};
    const text = context.sourceCode.text;
    const lineOf = lineIndex(text);
    const check = (node: FunctionNode): void => {
      const defined = definition(node);
      const [start, end] = defined.range;
      const lines = lineOf(end - 1) - lineOf(start) + 1;
      if (lines <= MAX_FUNCTION_LINES) return;
      const firstLineEnd = text.indexOf("\n", start);
      context.report({
        range: [start, firstLineEnd === -1 || firstLineEnd > end ? end : firstLineEnd],
        message: `Function "${
          nameOf(node, defined)
        }" spans ${lines} lines, over the limit of ${MAX_FUNCTION_LINES}`,
        hint: "Split it into named phases, each a function of at most " +
          `${MAX_FUNCTION_LINES} lines that reads as one idea`,
      });
    };
    return {
      FunctionDeclaration: check,
      FunctionExpression: check,
      ArrowFunctionExpression: check,
    };
  },
};

/** The plugin: rules named `streambolt/<rule>`. */
const plugin: Deno.lint.Plugin = {
  name: "streambolt",
  rules: { "max-function-lines": maxFunctionLines },
};
export default plugin;
