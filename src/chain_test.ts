import assert from "node:assert/strict";
import { InvalidArgumentError } from "./errors.ts";
import { DEFAULT_CHAIN_POLICY, fullDue, resolveChainPolicy } from "./chain.ts";

const MiB = 1024 * 1024;

Deno.test("fullDue() bounds a chain by its count and, past a floor, its bytes", () => {
  const policy = resolveChainPolicy();
  assert.deepEqual(policy, DEFAULT_CHAIN_POLICY);
  const chain = (deltas: number, deltaBytes: number, fullBytes: number) =>
    fullDue({ deltas, deltaBytes, fullBytes }, policy);
  assert.equal(chain(20, 1_000, 10_000), false, "20 deltas are allowed");
  assert.equal(chain(21, 1_000, 10_000), true, "the 21st is not");
  assert.equal(chain(3, 900_000, 1_000), false, "small deltas on a small full: under the floor");
  assert.equal(chain(3, 2 * MiB, 100 * MiB), false, "2% of the full's bytes");
  assert.equal(chain(3, 6 * MiB, 100 * MiB), true, "6% of the full's bytes");
});

Deno.test("resolveChainPolicy() refuses counts and ratios that make no sense", () => {
  for (
    const bad of [{ maxDeltas: -1 }, { maxDeltas: 1.5 }, { maxBytesRatio: 0 }, { minBytes: -1 }]
  ) {
    assert.throws(() => resolveChainPolicy(bad), InvalidArgumentError);
  }
  assert.equal(resolveChainPolicy({ maxDeltas: undefined }).maxDeltas, 20, "undefined: default");
});
