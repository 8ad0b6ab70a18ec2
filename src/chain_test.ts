import assert from "node:assert/strict";
import { InvalidArgumentError } from "./errors.ts";
import { DEFAULT_CHAIN_POLICY, fullDue, resolveChainPolicy, restoreRatio } from "./chain.ts";

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
