/**
 * Chains of snapshots: a full snapshot and the deltas after it. The policy that bounds what a
 * consumer must download and apply ({@linkcode ChainPolicy}), and which objects a shard no
 * longer needs once newer chains exist.
 *
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { planRestore } from "./_restore.ts";
import { compareSequenceNumbers, type Snapshot } from "./snapshot.ts";

/**
 * When a producer writes a full snapshot again (as well as the delta), so that a consumer's
 * restore stays bounded: a full plus at most `maxDeltas` deltas, whose stored bytes are at most
 * `maxBytesRatio` of the full's (once they pass `minBytes`).
 */
export interface ChainPolicy {
  /** Deltas after a full before the next full. Defaults to 20. */
  maxDeltas?: number;
  /** Stored bytes of the deltas after a full, as a share of the full's stored bytes, before the
   * next full. Applying a delta costs several times more per stored byte than decoding a full
   * (`deno task bench`, figure 9), so the default is 0.05. */
  maxBytesRatio?: number;
  /** The byte rule applies only once the deltas after a full hold more than this many stored
   * bytes: below it, a few small objects cost a consumer less than a full snapshot every run
   * costs the producer. Defaults to 1 MiB. */
  minBytes?: number;
}

/** The default {@linkcode ChainPolicy}. */
export const DEFAULT_CHAIN_POLICY: Required<ChainPolicy> = {
  maxDeltas: 20,
  maxBytesRatio: 0.05,
  minBytes: 1024 * 1024,
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
    maxBytesRatio: policy?.maxBytesRatio ?? DEFAULT_CHAIN_POLICY.maxBytesRatio,
    minBytes: policy?.minBytes ?? DEFAULT_CHAIN_POLICY.minBytes,
  };
  if (!Number.isFinite(p.minBytes) || p.minBytes < 0) {
    throw new InvalidArgumentError(
      `Cannot use chain policy as minBytes must be a number >= 0: current value is ${p.minBytes}`,
    );
  }
  if (!Number.isInteger(p.maxDeltas) || p.maxDeltas < 0) {
    throw new InvalidArgumentError(
      `Cannot use chain policy as maxDeltas must be a whole number >= 0: current value is ${p.maxDeltas}`,
    );
  }
  if (!Number.isFinite(p.maxBytesRatio) || p.maxBytesRatio <= 0) {
    throw new InvalidArgumentError(
      `Cannot use chain policy as maxBytesRatio must be a number > 0: current value is ${p.maxBytesRatio}`,
    );
  }
  return p;
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
    (chain.deltaBytes > policy.minBytes &&
      chain.deltaBytes > policy.maxBytesRatio * Math.max(1, chain.fullBytes));
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

/**
 * The objects of one shard that only older chains need: those before the `retain` newest full
 * snapshots. Nothing is picked unless the newest point stays restorable without it.
 *
 * @param snapshots Every object of one shard.
 * @param retain Full snapshots (with their chains) to keep; 0 keeps everything.
 * @returns The objects that may be deleted.
 */
export function supersededObjects(snapshots: Snapshot[], retain: number): Snapshot[] {
  if (retain <= 0) return [];
  const fulls = snapshots.filter((s) => s.kind === "full")
    .sort((a, b) => compareSequenceNumbers(b.sequenceNumber, a.sequenceNumber));
  if (fulls.length <= retain) return [];
  const cutoff = fulls[retain - 1].sequenceNumber;
  const doomed = snapshots.filter((s) => compareSequenceNumbers(s.sequenceNumber, cutoff) < 0);
  const kept = snapshots.filter((s) => !doomed.includes(s));
  const before = planRestore(snapshots);
  const after = planRestore(kept);
  const same = before && after && before.sequenceNumber === after.sequenceNumber &&
    before.final === after.final;
  return same ? doomed : [];
}
