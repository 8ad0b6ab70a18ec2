/**
 * Planning a restore of a point of one shard from its stored objects: the cheapest chain (a
 * full snapshot and the deltas after it, or the deltas after a point already held locally), by
 * the estimate producers bound their chains with ({@linkcode DELTA_COST_FACTOR},
 * {@linkcode OBJECT_COST_BYTES}). Pure: no store, no file.
 *
 * The objects of one shard form a graph: a full snapshot is a point on its own; a delta leads
 * from the point it applies to (its base) to a later one. A point is restorable when a path of
 * objects reaches it from a full snapshot (or from the local point). A delta whose base is not
 * restorable (a gap, a missing or refused object) is never applied.
 *
 * @module
 */
import { compareSnapshots, type Snapshot } from "./snapshot_key.ts";

/** What to restore. */
export interface PlanOptions {
  /** The point (sequence number) to reach; the newest restorable one when left out. */
  target?: { sequenceNumber: string; final?: boolean };
  /** A point already held locally: deltas from it cost nothing to start from. */
  from?: string;
  /** Keys not to use (they failed verification). */
  exclude?: ReadonlySet<string>;
}

/** How to reach a point. */
export interface RestorePlan {
  /** The objects to apply in order: a full snapshot (unless starting from the local point),
   * then deltas. Empty when the local point is already the target. */
  path: Snapshot[];
  /** The point reached. */
  sequenceNumber: string;
  /** Whether the point reached is a final one. */
  final: boolean;
  /** An object at the point reached (the path's last), when the store holds one. */
  target?: Snapshot;
  /** Newer objects that no chain reaches (a gap, or a refused object on the way). */
  unreachable: Snapshot[];
}

interface Reach {
  /** Stored bytes to get here. */
  cost: number;
  /** The object that gets here (none for the local point). */
  via?: Snapshot;
  sequenceNumber: string;
  final: boolean;
}

const pointId = (s: { sequenceNumber: string; final?: boolean }) =>
  `${s.sequenceNumber}${s.final ? ".final" : ""}`;

/**
 * What a delta costs to restore per stored byte, relative to a full snapshot: applying a
 * patchset row by row costs about this many times more than decoding a whole database per
 * stored byte (`deno task bench`, figure 9: 13.5 to 14.3; e.g. a 258 KB delta of 1% of
 * 1,000,000 keys in ~76 ms against ~470 ms to decode the 24.5 MB full).
 */
export const DELTA_COST_FACTOR = 14;

/**
 * What every object adds to a restore, in full-snapshot bytes: a request, a verification, a
 * transaction (measured here: 6 to 12 ms to fetch and check a small delta, the time a full
 * snapshot takes to decode about 256 KiB to 512 KiB).
 */
export const OBJECT_COST_BYTES = 256 * 1024;

/**
 * Plans the cheapest restore of a point of one shard, by estimated cost: stored bytes, a
 * delta's weighted by {@linkcode DELTA_COST_FACTOR}, and {@linkcode OBJECT_COST_BYTES} per
 * object.
 *
 * @param snapshots Every object of the shard.
 * @returns The plan, or `undefined` when no point is restorable (or the target is not).
 */
export function planRestore(
  snapshots: Snapshot[],
  options: PlanOptions = {},
): RestorePlan | undefined {
  const { usable, best } = reach(snapshots, options);
  const reached = options.target ? best.get(pointId(options.target)) : newest(best);
  if (!reached) return undefined;
  const path = pathTo(best, reached);
  return {
    path,
    sequenceNumber: reached.sequenceNumber,
    final: reached.final,
    target: path.at(-1) ?? usable.findLast((s) => pointId(s) === pointId(reached)),
    unreachable: usable.filter((s) => !best.has(pointId(s)) && compareSnapshots(s, reached) > 0),
  };
}

/**
 * Every point of a shard that a chain reaches, newest first.
 *
 * @param snapshots Every object of the shard.
 * @returns The points.
 */
export function restorablePoints(
  snapshots: Snapshot[],
): Array<{ sequenceNumber: string; final: boolean }> {
  return [...reach(snapshots, {}).best.values()]
    .map(({ sequenceNumber, final }) => ({ sequenceNumber, final }))
    .sort((a, b) => compareSnapshots(b, a));
}

/**
 * The cheapest path to each of `targets`, planned in one pass over the objects: for each point,
 * the `path` {@linkcode planRestore} would give with it as the target, by the point's id
 * (`sequenceNumber`, plus `.final` for a final point). A point no chain reaches has no entry.
 *
 * @param snapshots Every object of the shard.
 * @param targets The points.
 * @returns The paths, by point id.
 */
export function planRestorePaths(
  snapshots: Snapshot[],
  targets: Array<{ sequenceNumber: string; final?: boolean }>,
): Map<string, Snapshot[]> {
  const { best } = reach(snapshots, {});
  const paths = new Map<string, Snapshot[]>();
  for (const target of targets) {
    const reached = best.get(pointId(target));
    if (reached) paths.set(pointId(target), pathTo(best, reached));
  }
  return paths;
}

/** The objects that make `reached`, oldest first: back from it through each delta's base. */
function pathTo(best: Map<string, Reach>, reached: Reach): Snapshot[] {
  const path: Snapshot[] = [];
  for (let step: Reach | undefined = reached; step?.via;) {
    path.push(step.via);
    step = step.via.kind === "full" ? undefined : best.get(step.via.baseSequenceNumber!);
  }
  return path.reverse();
}

/** The cheapest known way to each point (a shortest-path pass in sequence order). */
function reach(
  snapshots: Snapshot[],
  options: PlanOptions,
): { usable: Snapshot[]; best: Map<string, Reach> } {
  const usable = snapshots.filter((s) => !options.exclude?.has(s.key)).sort(compareSnapshots);
  const best = new Map<string, Reach>();
  const offer = (s: Snapshot, cost: number) => {
    const known = best.get(pointId(s));
    if (!known || cost < known.cost) {
      best.set(pointId(s), { cost, via: s, sequenceNumber: s.sequenceNumber, final: s.final });
    }
  };
  if (options.from !== undefined) {
    best.set(options.from, { cost: 0, sequenceNumber: options.from, final: false });
  }
  // Sorted by sequence number: every delta's base is settled before the delta is seen.
  for (const s of usable) {
    if (s.kind === "full") offer(s, (s.size ?? 1) + OBJECT_COST_BYTES);
    else {
      const base = best.get(s.baseSequenceNumber!);
      if (base) offer(s, base.cost + DELTA_COST_FACTOR * (s.size ?? 1) + OBJECT_COST_BYTES);
    }
  }
  return { usable, best };
}

function newest(best: Map<string, Reach>): Reach | undefined {
  let found: Reach | undefined;
  for (const reach of best.values()) {
    if (!found || compareSnapshots(reach, found) > 0) found = reach;
  }
  return found;
}
