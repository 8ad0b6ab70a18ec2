/**
 * Retention: which restorable points of a shard are kept, by age and by count. One model serves
 * the producer's automatic collection (`ShardSnapshotter`'s `retention`) and `collectGarbage`
 * (`streambolt snapshot` and `streambolt gc` alike take `--retain DURATION --keep N`).
 *
 * @module
 */
import { planRestore, planRestorePaths, restorablePoints } from "./restore_plan.ts";
import { InvalidArgumentError } from "./errors.ts";
import { compareSequenceNumbers, compareSnapshots, type Snapshot } from "./snapshot_key.ts";

/**
 * Which restorable points of each shard to keep: every point younger than `retainMs`, and the
 * newest `keepPoints` points, each with every object its restore needs (its full snapshot and
 * the deltas after it). The newest point of a shard always stays restorable. A point's age is
 * the last-modified time of the object that makes it (as the store lists it); a point of unknown
 * age is kept while ages count. A field left out keeps nothing by that rule; leave the whole
 * policy out for {@linkcode DEFAULT_RETENTION} (a day, and the newest point).
 */
export interface RetentionPolicy {
  /** Keep every point younger than this many ms. `Infinity` keeps everything (turns collection
   * off). Defaults to 0: no point is kept for its age. */
  retainMs?: number;
  /** Keep the newest this many points of each shard, whatever their age. At least 1; defaults
   * to 1. */
  keepPoints?: number;
}

/** The retention used when none is given: every point of the last day, and the newest. */
export const DEFAULT_RETENTION: Readonly<Required<RetentionPolicy>> = Object.freeze({
  retainMs: 86_400_000,
  keepPoints: 1,
});

/** What a retention plan keeps and deletes. */
export interface RetentionPlan {
  /** The objects to delete, per shard oldest first. */
  doomed: Snapshot[];
  /** Why each object is kept or deleted, by key. */
  why: Map<string, string>;
}

/**
 * Checks a policy and fills in its defaults.
 *
 * @param policy The policy; `undefined` for {@linkcode DEFAULT_RETENTION}.
 * @param action What the policy is for, for error messages (e.g. "collect garbage").
 * @returns The policy with every field set.
 * @throws {InvalidArgumentError} When `keepPoints` is not a whole number of at least 1, or
 * `retainMs` is not a number of ms >= 0.
 */
export function resolveRetention(
  policy: RetentionPolicy | undefined,
  action: string,
): Required<RetentionPolicy> {
  if (policy === undefined) return { ...DEFAULT_RETENTION };
  const keepPoints = policy.keepPoints ?? 1;
  if (!Number.isInteger(keepPoints) || keepPoints < 1) {
    throw new InvalidArgumentError(
      `Cannot ${action} as keepPoints must be a whole number of at least 1: current value is ${keepPoints}`,
    );
  }
  const retainMs = policy.retainMs ?? 0;
  if (typeof retainMs !== "number" || Number.isNaN(retainMs) || retainMs < 0) {
    throw new InvalidArgumentError(
      `Cannot ${action} as retainMs must be a number of ms >= 0: current value is ${retainMs}`,
    );
  }
  return { keepPoints, retainMs };
}

/**
 * Plans the retention of one shard's objects: keeps what the policy's points need, and
 * everything at or after the oldest of them, except a delta that deleting the older objects
 * would leave without a base; deletes the rest unless it is too young (or of unknown age) while
 * ages count. A delta too young to delete keeps the objects its base needs instead: every
 * delta a chain reaches before is reached after. A shard with no restorable point keeps all.
 *
 * @param list Every object of one shard.
 * @param policy A resolved policy ({@linkcode resolveRetention}).
 * @param now The time ages are measured from (ms since epoch).
 * @returns What to delete, and why each object is kept or deleted.
 */
export function planShardRetention(
  list: Snapshot[],
  policy: Required<RetentionPolicy>,
  now: number,
): RetentionPlan {
  const why = new Map<string, string>();
  const points = restorablePoints(list);
  if (points.length === 0 || policy.retainMs === Infinity) {
    const reason = points.length === 0 ? "no restorable point: nothing deleted" : "retain forever";
    for (const s of list) why.set(s.key, reason);
    return { doomed: [], why };
  }
  const ages = new Ages(list, policy.retainMs, now);
  if (list.every((s) => ages.keepsObject(s))) {
    // Every object is too young to delete (the usual state of a producer's first day).
    for (const s of list) why.set(s.key, ages.keepsObject(s)!);
    return { doomed: [], why };
  }
  const kept = points.flatMap((p, i) => {
    const reason = i === 0
      ? "the newest point"
      : i < policy.keepPoints
      ? `one of the newest ${policy.keepPoints} points`
      : ages.keepsPoint(p);
    return reason ? [{ point: p, reason }] : [];
  });
  const makers = restorePaths(list, kept.map((k) => k.point));
  for (const { point, reason } of kept) why.set(makers.get(pointId(point))!.key, reason);
  for (const [point, path] of makers.paths) {
    for (const s of path) if (!why.has(s.key)) why.set(s.key, `needed by point ${point}`);
  }
  const needed = new Set(why.keys());
  const oldest = kept.at(-1)!.point;
  const doomed = new Set<string>();
  for (const s of list) {
    if (why.has(s.key)) continue;
    const before = (compareSequenceNumbers(s.sequenceNumber, oldest.sequenceNumber) ||
      Number(s.final) - Number(oldest.final)) < 0;
    const young = ages.keepsObject(s);
    if (!before) why.set(s.key, "newer than the oldest kept point");
    else if (young) why.set(s.key, young);
    else {
      doomed.add(s.key);
      why.set(s.key, ages.deletedReason());
    }
  }
  keepDeltasReachable(list, doomed, needed, ages, why);
  return { doomed: list.filter((s) => doomed.has(s.key)).sort(compareSnapshots), why };
}

/**
 * Dooms the deltas that deleting `doomed` would leave unreachable (no kept chain leads to
 * their base), or, for a delta that must stay, keeps the objects its base needs.
 */
function keepDeltasReachable(
  list: Snapshot[],
  doomed: Set<string>,
  needed: Set<string>,
  ages: Ages,
  why: Map<string, string>,
): void {
  const reached = new Set(reachedDeltas(list).map((s) => s.key));
  // Each turn dooms an unreachable delta (which changes no other object's reach) or makes one
  // reachable for good, so this ends within twice the number of deltas.
  for (let turn = 0; turn <= 2 * list.length; turn++) {
    const remaining = list.filter((s) => !doomed.has(s.key));
    const stillReached = new Set(reachedDeltas(remaining).map((s) => s.key));
    const orphan = remaining.find((s) => reached.has(s.key) && !stillReached.has(s.key));
    if (!orphan) break;
    if (!needed.has(orphan.key) && !ages.keepsObject(orphan)) {
      doomed.add(orphan.key);
      why.set(orphan.key, "its base is deleted: no kept chain would reach it");
      continue;
    }
    const base = { sequenceNumber: orphan.baseSequenceNumber!, final: false };
    for (const s of planRestore(list, { target: base })!.path) {
      if (doomed.delete(s.key)) why.set(s.key, `base of delta ${orphan.key}, which is kept`);
    }
  }
}

const pointId = (p: { sequenceNumber: string; final: boolean }) =>
  `${p.sequenceNumber}${p.final ? ".final" : ""}`;

/**
 * The restore paths of `points` (newest first): a point on the path of a newer one is restored
 * by that path's beginning (a path reaches each point on it the cheapest way), so only the
 * others are planned.
 *
 * @returns The object that makes each point, by point id (`get`), and the paths planned, by
 * the sequence number of the point each was planned for.
 */
function restorePaths(
  list: Snapshot[],
  points: Array<{ sequenceNumber: string; final: boolean }>,
): { get(id: string): Snapshot | undefined; paths: Map<string, Snapshot[]> } {
  const makers = new Map<string, Snapshot>();
  const paths = new Map<string, Snapshot[]>();
  // One planning pass for every point: a pass per point made a day-long follower's retention
  // quadratic in its points (~0.2 s a publish after 2,000 of them).
  const planned = planRestorePaths(list, points);
  for (const point of points) {
    if (makers.has(pointId(point))) continue;
    const path = planned.get(pointId(point))!;
    paths.set(point.sequenceNumber, path);
    for (const s of path) if (!makers.has(pointId(s))) makers.set(pointId(s), s);
  }
  return { get: (id) => makers.get(id), paths };
}

/** The deltas whose base a chain of `list` reaches, oldest first. */
function reachedDeltas(list: Snapshot[]): Snapshot[] {
  const points = new Set(
    restorablePoints(list).filter((p) => !p.final).map((p) => p.sequenceNumber),
  );
  return list.filter((s) => s.kind === "delta" && points.has(s.baseSequenceNumber!))
    .sort(compareSnapshots);
}

/** The ages of one shard's objects, against a policy's `retainMs`. */
class Ages {
  readonly #byPoint = new Map<string, Snapshot[]>();
  readonly #retainMs: number;
  readonly #now: number;

  constructor(list: Snapshot[], retainMs: number, now: number) {
    for (const s of list) {
      this.#byPoint.set(pointId(s), [...this.#byPoint.get(pointId(s)) ?? [], s]);
    }
    this.#retainMs = retainMs;
    this.#now = now;
  }

  /** Why an object is too young to delete, or `undefined` when it is not. */
  keepsObject(s: Snapshot): string | undefined {
    if (this.#retainMs <= 0) return undefined;
    if (s.lastModified === undefined) return "of unknown age";
    const age = this.#now - s.lastModified.getTime();
    return age <= this.#retainMs ? `younger than ${formatMs(this.#retainMs)}` : undefined;
  }

  /** Why a point is kept for its age (any object that makes it too young, or of unknown age),
   * or `undefined` when it is not. */
  keepsPoint(p: { sequenceNumber: string; final: boolean }): string | undefined {
    const makers = this.#byPoint.get(pointId(p)) ?? [];
    return makers.map((s) => this.keepsObject(s)).find((reason) => reason !== undefined);
  }

  /** Why an object is deleted. */
  deletedReason(): string {
    return this.#retainMs > 0
      ? `older than ${formatMs(this.#retainMs)} and needed by no kept point`
      : "needed by no kept point";
  }
}

/** A whole number of the largest unit that divides `ms`: `24h`, `90m`, `1500ms`. */
function formatMs(ms: number): string {
  const units: Array<[string, number]> = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], [
    "s",
    1_000,
  ]];
  const [unit, size] = units.find(([, size]) => ms >= size && ms % size === 0) ?? ["ms", 1];
  return `${ms / size}${unit}`;
}
