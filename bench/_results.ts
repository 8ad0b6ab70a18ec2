/**
 * The benchmark's results: which figures a run measures (`BENCH_FIGURES`), the table it prints,
 * and bench/results.json, merged so that a run of some figures keeps the others' last values,
 * each marked with the date it was measured.
 *
 * @module
 */

/** Every figure the harness knows, in the order of the table. */
export const FIGURES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14] as const;

/** One line of the table, tied to the entry of results.json it reports. */
export interface Row {
  /** The key of its entry in results.json. */
  result: string;
  /** What is measured. */
  figure: string;
  /** The measured values. */
  measured: string;
  /** The ratio the figure is about. */
  ratio: string;
  /** What it should be. */
  target: string;
  /** When it was measured (ISO 8601). */
  measuredAt: string;
}

/** A result entry: any JSON object, stamped with when it was measured. */
export type Entry = Record<string, unknown> & { measuredAt?: string };

/** The shape of bench/results.json. */
export interface Results {
  /** The machine of the latest run. */
  machine: Record<string, unknown>;
  /** The figures' entries by key. */
  [key: string]: unknown;
  /** The table, in figure order. */
  table: Row[];
}

/**
 * The figures `--only` or `BENCH_FIGURES` selects (e.g. `1,5,6,7`); all when it is unset or
 * empty.
 *
 * @param value The option's or the variable's value.
 * @returns The selected figure numbers.
 */
export function selectedFigures(value: string | undefined): Set<number> {
  if (!value?.trim()) return new Set(FIGURES);
  const picked = value.split(",").map((s) => Number(s.trim()));
  const unknown = picked.filter((n) => !(FIGURES as readonly number[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `Cannot select figures as some do not exist (known: ${
        FIGURES.join(",")
      }): current value is "${value}"`,
    );
  }
  return new Set(picked);
}

/**
 * The value of `--only N,M` (or `--only=N,M`) in the arguments, if any.
 *
 * @param args The program's arguments.
 * @returns The value, or undefined.
 */
export function onlyArg(args: string[]): string | undefined {
  const at = args.findIndex((a) => a === "--only" || a.startsWith("--only="));
  if (at === -1) return undefined;
  return args[at].startsWith("--only=") ? args[at].slice("--only=".length) : args[at + 1] ?? "";
}

/** The figure a row belongs to (its label starts with the number). */
function figureOf(row: Row): number {
  return Number(/^(\d+)\./.exec(row.figure)?.[1] ?? 0);
}

/**
 * This run's results merged into the previous file's: entries and rows this run did not produce
 * are kept as they were, with the date they were measured.
 *
 * @param previous The previous results (or undefined).
 * @param current This run's entries (without dates) and rows.
 * @returns The merged results.
 */
export function mergeResults(
  previous: Results | undefined,
  current: { machine: Record<string, unknown>; entries: Record<string, Entry>; rows: Row[] },
): Results {
  const date = String(current.machine.date);
  const merged: Results = { machine: current.machine, table: [] };
  const previousDate = String(previous?.machine?.date ?? "");
  for (const [key, value] of Object.entries(previous ?? {})) {
    if (key === "machine" || key === "table" || key in current.entries) continue;
    const entry = value as Entry;
    merged[key] = { ...entry, measuredAt: entry.measuredAt ?? previousDate };
  }
  for (const [key, entry] of Object.entries(current.entries)) {
    merged[key] = { ...entry, measuredAt: date };
  }
  const kept = (previous?.table ?? []).filter((row) => !(row.result in current.entries));
  merged.table = [...kept, ...current.rows].sort((a, b) => figureOf(a) - figureOf(b));
  return merged;
}

/**
 * The table as Markdown, with the date each row was measured.
 *
 * @param rows The rows.
 * @returns The lines.
 */
export function formatTable(rows: Row[]): string[] {
  const cells = [
    ["figure", "measured", "ratio", "target", "run"],
    ...rows.map((r) => [r.figure, r.measured, r.ratio, r.target, r.measuredAt.slice(0, 10)]),
  ];
  const widths = cells[0].map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((s, i) => s.padEnd(widths[i])).join(" | ")} |`;
  return [line(cells[0]), line(widths.map((w) => "-".repeat(w))), ...cells.slice(1).map(line)];
}

/** What a figure writes: entries of results.json and rows of the table. */
export class Recorder {
  /** This run's entries by key. */
  readonly entries: Record<string, Entry> = {};
  /** This run's rows. */
  readonly rows: Row[] = [];
  /** Now, as every row and entry of this run is dated. */
  readonly date: string = new Date().toISOString();

  /**
   * Records an entry of results.json.
   *
   * @param key Its key.
   * @param value The entry.
   */
  entry(key: string, value: Entry): void {
    this.entries[key] = value;
  }

  /**
   * Adds a row of the table, reporting the entry `result`.
   *
   * @param result The entry's key.
   * @param cells Figure, measured, ratio, target.
   */
  row(result: string, ...cells: [string, string, string, string]): void {
    const [figure, measured, ratio, target] = cells;
    this.rows.push({ result, figure, measured, ratio, target, measuredAt: this.date });
  }
}

/** Logs a line of progress to stderr. */
export const log = (line: string): void => console.error(`bench: ${line}`);
/** Bytes as MiB. */
export const mb = (bytes: number): number => bytes / (1024 * 1024);
/** A number rounded for the table. */
export const round = (n: number, digits = 2): number => Number(n.toFixed(digits));
