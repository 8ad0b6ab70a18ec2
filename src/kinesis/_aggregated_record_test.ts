import assert from "node:assert/strict";
import { decodeAggregatedRecord } from "./_aggregated_record.ts";

const text = (s: string) => [...new TextEncoder().encode(s)];
/** A length-delimited field. */
const bytesField = (field: number, body: number[]) => [field * 8 + 2, body.length, ...body];
/** A varint field (values below 128). */
const varintField = (field: number, value: number) => [field * 8, value];

Deno.test("decodeAggregatedRecord() reads the tables and records, skipping unknown fields", () => {
  const record = [
    ...varintField(1, 1),
    ...varintField(2, 0),
    ...bytesField(3, [7, 8]),
    ...bytesField(4, bytesField(1, text("t"))),
    ...varintField(9, 5), // unknown: skipped
  ];
  const body = new Uint8Array([
    ...bytesField(1, text("a")),
    ...bytesField(1, text("b")),
    ...bytesField(2, text("42")),
    ...bytesField(3, record),
    ...bytesField(3, [...varintField(1, 0), ...bytesField(3, [])]),
    ...[0x3d, 1, 2, 3, 4], // field 7, fixed32: skipped
  ]);
  assert.deepEqual(decodeAggregatedRecord(body), {
    partitionKeys: ["a", "b"],
    explicitHashKeys: ["42"],
    records: [
      { partitionKeyIndex: 1, explicitHashKeyIndex: 0, data: new Uint8Array([7, 8]) },
      { partitionKeyIndex: 0, data: new Uint8Array([]) },
    ],
  });
});

Deno.test("decodeAggregatedRecord() refuses what is not a well-formed AggregatedRecord", async (t) => {
  const cases: Record<string, number[]> = {
    "a truncated field": [...bytesField(1, text("abc"))].slice(0, 3),
    "a truncated varint": [...bytesField(3, [0x08, 0x80])],
    "a record without data": [...bytesField(3, varintField(1, 0))],
    "a record without a partition key index": [...bytesField(3, bytesField(3, [1]))],
    "a tag without a key": [
      ...bytesField(3, [...varintField(1, 0), ...bytesField(3, [1]), ...bytesField(4, [])]),
    ],
    "a known field of the wrong wire type": [...varintField(1, 3)],
    "a group (wire type 3)": [0x4b],
  };
  for (const [name, bytes] of Object.entries(cases)) {
    await t.step(name, () => {
      assert.equal(decodeAggregatedRecord(new Uint8Array(bytes)), undefined);
    });
  }
});
