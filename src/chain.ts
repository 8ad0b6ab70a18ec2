/**
 * Chains of snapshots: a full snapshot and the deltas after it. The policy that bounds what a
 * consumer must download and apply ({@linkcode ChainPolicy}), and which objects a shard no
 * longer needs once newer chains exist.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { DELTA_COST_FACTOR, OBJECT_COST_BYTES } from "./restore_plan.ts";
import type { Snapshot } from "./snapshot_key.ts";

/**
 * When a producer writes a full snapshot again, so that a consumer's restore stays bounded: a
 * full plus at most `maxDeltas` deltas, whose estimated restore costs at most `maxRestoreRatio`
 * times the full's alone (and, if set, whose stored bytes are at most `maxBytesRatio` of the
 * full's).
 *
 * The estimate is the one consumers plan with: a full snapshot costs its stored bytes, a delta
 * {@linkcode DELTA_COST_FACTOR} times its stored bytes (applying a patchset row by row costs that
 * much more per stored byte than decoding a whole database), and every object
 * {@linkcode OBJECT_COST_BYTES} more (a request, a verification). So a small state gets a full
 * snapshot at every point (restoring it whole is cheaper than any chain), and a large one long
 * chains of small deltas.
 *
 * A point whose full is due also gets its delta, for the consumers that hold the point before
 * it, only when the delta saves them more than an object costs ({@linkcode deltaBesideFull}):
 * a small state's point is then one object, its full.
 */
export interface ChainPolicy {
  /** Deltas after a full before the next full, at most. Defaults to 20. */
  maxDeltas?: number;
  /** The estimated cost of restoring the chain, as a multiple of restoring its full snapshot
   * alone, past which the next full is written. Defaults to 1.4, which keeps a bootstrap within
   * 1.5 times a full one (`deno task bench`, figure 9). `Infinity` bounds no restore cost: a
   * full is written by the other limits alone, and always beside its delta. */
  maxRestoreRatio?: number;
  /** Also write a full once the deltas' stored bytes pass this share of the full's. Unset by
   * default. */
  maxBytesRatio?: number;
}

/** The default {@linkcode ChainPolicy}. */
export const DEFAULT_CHAIN_POLICY: Required<ChainPolicy> = {
  maxDeltas: 20,
  maxRestoreRatio: 1.4,
  maxBytesRatio: Infinity,
};

/** The chain a consumer restores to reach a point: its full and its deltas' stored bytes. */
export interface ChainCost {
  /** Stored bytes of the chain's full snapshot. */
  fullBytes: number;
  /** Deltas after it. */
  deltas: number;
  /** Their stored bytes. */
  deltaBytes: number;
}

/**
 * Checks a policy and fills in its defaults.
 *
 * @throws {InvalidArgumentError} For a count below 0 or a ratio that is not a positive number.
 */
export function resolveChainPolicy(policy?: ChainPolicy): Required<ChainPolicy> {
  const p = {
    maxDeltas: policy?.maxDeltas ?? DEFAULT_CHAIN_POLICY.maxDeltas,
    maxRestoreRatio: policy?.maxRestoreRatio ?? DEFAULT_CHAIN_POLICY.maxRestoreRatio,
    maxBytesRatio: policy?.maxBytesRatio ?? DEFAULT_CHAIN_POLICY.maxBytesRatio,
  };
  const bad = (what: string, value: number) =>
    new InvalidArgumentError(
      `Cannot use chain policy as ${what}: current value is ${value}`,
    );
  if (!Number.isInteger(p.maxDeltas) || p.maxDeltas < 0) {
    throw bad("maxDeltas must be a whole number >= 0", p.maxDeltas);
  }
  if (Number.isNaN(p.maxRestoreRatio) || p.maxRestoreRatio < 1) {
    throw bad("maxRestoreRatio must be a number >= 1", p.maxRestoreRatio);
  }
  if (Number.isNaN(p.maxBytesRatio) || p.maxBytesRatio <= 0) {
    throw bad("maxBytesRatio must be a number > 0", p.maxBytesRatio);
  }
  return p;
}

/**
 * The estimated cost of restoring a chain, as a multiple of restoring its full snapshot alone.
 *
 * @param chain The chain.
 * @returns 1 for a full alone; more with each delta.
 */
export function restoreRatio(chain: ChainCost): number {
  const full = chain.fullBytes + OBJECT_COST_BYTES;
  const deltas = DELTA_COST_FACTOR * chain.deltaBytes + chain.deltas * OBJECT_COST_BYTES;
  return (full + deltas) / full;
}

/**
 * Whether a chain has grown past the policy, so that the next point must be written whole.
 *
 * @param chain The chain including the delta just written.
 * @param policy The policy, defaults filled in.
 * @returns True when a full snapshot is due.
 */
export function fullDue(chain: ChainCost, policy: Required<ChainPolicy>): boolean {
  return chain.deltas > policy.maxDeltas ||
    restoreRatio(chain) > policy.maxRestoreRatio ||
    chain.deltaBytes > policy.maxBytesRatio * Math.max(1, chain.fullBytes);
}

/**
 * Whether a point whose full snapshot is due is published with its delta beside the full: only
 * when the delta saves a consumer that holds the point before it (a refresh, a live replica)
 * more than an object costs, by the estimate consumers plan with: when restoring the full costs
 * more than applying the delta plus {@linkcode OBJECT_COST_BYTES}. Else the full alone does for
 * every consumer (such a consumer pays at most one object's cost more, at most twice the
 * delta's), and the producer puts one object instead of two. With `maxRestoreRatio` `Infinity`
 * (no reasoning about restore costs: fulls by count and bytes alone) every delta is kept.
 *
 * @param deltaBytes The delta's stored bytes.
 * @param fullBytes The full snapshot's stored bytes.
 * @param policy The policy, defaults filled in.
 * @returns True when the delta is worth publishing beside the full.
 */
export function deltaBesideFull(
  deltaBytes: number,
  fullBytes: number,
  policy: Required<ChainPolicy>,
): boolean {
  if (policy.maxRestoreRatio === Infinity) return true;
  const full = fullBytes + OBJECT_COST_BYTES;
  const delta = DELTA_COST_FACTOR * deltaBytes + OBJECT_COST_BYTES;
  return full > delta + OBJECT_COST_BYTES;
}

/**
 * The cost of a restore path (a full, then deltas).
 *
 * @param path The objects a consumer applies.
 * @returns What the path costs; a path that starts from a local point has no full.
 */
export function chainCost(path: Snapshot[]): ChainCost {
  const deltas = path.filter((s) => s.kind === "delta");
  return {
    fullBytes: path.find((s) => s.kind === "full")?.size ?? 0,
    deltas: deltas.length,
    deltaBytes: deltas.reduce((sum, s) => sum + (s.size ?? 0), 0),
  };
}
