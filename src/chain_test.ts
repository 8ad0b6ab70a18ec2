import assert from "node:assert/strict";
import { InvalidArgumentError } from "./errors.ts";
import {
  DEFAULT_CHAIN_POLICY,
  deltaBesideFull,
  fullDue,
  resolveChainPolicy,
  restoreRatio,
} from "./chain.ts";
import { DELTA_COST_FACTOR, OBJECT_COST_BYTES } from "./restore_plan.ts";

const MB = 1_000_000;

Deno.test("fullDue() bounds a chain by its count and by its estimated restore cost", () => {
  const policy = resolveChainPolicy();
  assert.deepEqual(policy, DEFAULT_CHAIN_POLICY);
  const due = (deltas: number, deltaBytes: number, fullBytes: number) =>
    fullDue({ deltas, deltaBytes, fullBytes }, policy);
  // A large state (bench figure 9: a 24.5 MB full, 258 KB deltas of 1% of the keys).
  assert.equal(due(1, 0.258 * MB, 24.5 * MB), false);
  assert.equal(due(2, 0.516 * MB, 24.5 * MB), false);
  assert.equal(due(3, 0.774 * MB, 24.5 * MB), true, "a third 1% delta passes 1.4x");
  // Tiny deltas on the same state: the count bounds them.
  assert.equal(due(20, 20_000, 24.5 * MB), false);
  assert.equal(due(21, 21_000, 24.5 * MB), true);
  // A small state: restoring it whole is cheaper than any chain.
  assert.equal(due(1, 1_000, 3_000), true);
});

Deno.test("a small state's point is one object, its full: due at once, and no delta beside it", () => {
  const policy = resolveChainPolicy();
  // Bench figure 12's follower: 10,000 keys of the kv generator (a 205 KB full), 90 records a
  // point (a 1.7 KB delta). One delta already costs a bootstrap 1.6 times the full alone: a full
  // is due. The delta would save a consumer holding the point before less than an object costs.
  const kv = { deltas: 1, deltaBytes: 1_663, fullBytes: 204_370 };
  assert.ok(restoreRatio(kv) > 1.6);
  assert.equal(fullDue(kv, policy), true);
  assert.equal(deltaBesideFull(1_663, 205_360, policy), false);
  // The same keys as running sums (an 89 KB full, 1.2 KB deltas).
  assert.equal(fullDue({ deltas: 1, deltaBytes: 1_155, fullBytes: 88_907 }, policy), true);
  assert.equal(deltaBesideFull(1_155, 89_220, policy), false);
});

Deno.test("deltaBesideFull() keeps a delta only when it saves a consumer more than an object costs", () => {
  const policy = resolveChainPolicy();
  // A large state (bench figure 9): the full costs 6.4 times the delta; the delta stays.
  assert.equal(deltaBesideFull(0.258 * MB, 24.5 * MB, policy), true);
  // At the bound: a full costing the delta plus one object does alone; a byte more does not.
  const deltaBytes = 10_000;
  const atBound = DELTA_COST_FACTOR * deltaBytes + OBJECT_COST_BYTES;
  assert.equal(deltaBesideFull(deltaBytes, atBound, policy), false);
  assert.equal(deltaBesideFull(deltaBytes, atBound + 1, policy), true);
  // The full alone costs such a consumer at most twice the delta.
  const full = atBound + OBJECT_COST_BYTES;
  assert.ok(full <= 2 * (DELTA_COST_FACTOR * deltaBytes + OBJECT_COST_BYTES));
  // Infinity reasons about no restore cost and keeps every delta, as before.
  const unbounded = resolveChainPolicy({ maxRestoreRatio: Infinity });
  assert.equal(deltaBesideFull(1_000, 1_000, unbounded), true);
});

Deno.test("restoreRatio() is 1 for a full alone and grows with each delta", () => {
  assert.equal(restoreRatio({ deltas: 0, deltaBytes: 0, fullBytes: 10 * MB }), 1);
  const one = restoreRatio({ deltas: 1, deltaBytes: 0.1 * MB, fullBytes: 10 * MB });
  const two = restoreRatio({ deltas: 2, deltaBytes: 0.2 * MB, fullBytes: 10 * MB });
  assert.ok(1 < one && one < two);
});

Deno.test("resolveChainPolicy() refuses counts and ratios that make no sense", () => {
  for (
    const bad of [{ maxDeltas: -1 }, { maxDeltas: 1.5 }, { maxRestoreRatio: 0.5 }, {
      maxBytesRatio: 0,
    }]
  ) {
    assert.throws(() => resolveChainPolicy(bad), InvalidArgumentError);
  }
  assert.equal(resolveChainPolicy({ maxDeltas: undefined }).maxDeltas, 20, "undefined: default");
  assert.equal(resolveChainPolicy({ maxRestoreRatio: Infinity }).maxRestoreRatio, Infinity);
});
