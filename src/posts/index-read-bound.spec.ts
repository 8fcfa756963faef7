import { indexReadIsBounded, Q_INDEX_COST_MAX } from './posts.repository';

/** `EXPLAIN (FORMAT JSON)` of a candidates read: a Limit over `scan`, as PostgreSQL 15 prints it. */
const explained = (scan: Record<string, unknown>) => [
  { Plan: { 'Node Type': 'Limit', 'Total Cost': 377.3, 'Plan Rows': 2001, Plans: [scan] } },
];

describe('indexReadIsBounded', () => {
  // The plans of `q=es #3&sort=title` past its window, and of `q=haystack`, at 1M users / 3M posts (docs/scale.md).
  const seqScan = { 'Node Type': 'Seq Scan', 'Total Cost': 137177.1, 'Plan Rows': 728114 };
  const trigramBitmap = {
    'Node Type': 'Bitmap Heap Scan',
    'Total Cost': 2924.1,
    'Plan Rows': 1,
    Plans: [{ 'Node Type': 'Bitmap Index Scan', 'Index Name': 'posts_title_trgm_idx', 'Total Cost': 2924 }],
  };

  it('judges the node under the Limit run to its end, not the Limit', () => {
    expect(indexReadIsBounded(explained(seqScan))).toBe(false);
    expect(indexReadIsBounded(explained(trigramBitmap))).toBe(true);
    expect(indexReadIsBounded(explained({ ...trigramBitmap, 'Total Cost': Q_INDEX_COST_MAX + 1 }))).toBe(false);
  });

  it('reads the plan as the driver returns it, parsed or as text; anything else is not bounded', () => {
    expect(indexReadIsBounded(JSON.stringify(explained(trigramBitmap)))).toBe(true);
    expect(indexReadIsBounded(undefined)).toBe(false);
    expect(indexReadIsBounded([{ Plan: { 'Node Type': 'Limit', Plans: [] } }])).toBe(false);
  });
});
