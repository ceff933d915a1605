/**
 * How the out-of-order queue keeps its chunk count bounded (src/tcp/reassembly.ts, "chunk
 * count"): a piece is copied into its neighbouring chunk exactly when the two together fit in
 * 2048 bytes, whether the piece extends a range at its end, at its start, or closes the hole
 * between two ranges; two larger neighbours stay separate chunks (so no copy ever grows without
 * bound and a range of B bytes holds at most 2B/2048 + 1 chunks). The data is the same either
 * way, and is checked too.
 */
import { describe, expect, it } from 'vitest';
import { OutOfOrderQueue } from '../../src/tcp/reassembly.js';

const pattern = (from: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (from + i) & 0xff);
const joined = (pieces: Uint8Array[]) => Buffer.concat(pieces.map((p) => Buffer.from(p)));

function queueOf(pieces: Array<[number, number]>): OutOfOrderQueue {
  const q = new OutOfOrderQueue(1 << 16);
  for (const [at, len] of pieces) expect(q.insert(at, pattern(at, len), 0, 1 << 16)).toBe(len);
  return q;
}

function expectContents(q: OutOfOrderQueue, from: number, len: number): void {
  expect(joined(q.take(from))).toEqual(Buffer.from(pattern(from, len)));
}

describe('chunk coalescing in the out-of-order queue', () => {
  it('a piece appended to a range: one chunk when the two fill exactly 2048 bytes, two when they exceed it', () => {
    const fit = queueOf([[100, 1024], [1124, 1024]]);
    expect([fit.count, fit.chunks]).toEqual([1, 1]);
    expectContents(fit, 100, 2048);
    const over = queueOf([[100, 1024], [1124, 1025]]);
    expect([over.count, over.chunks]).toEqual([1, 2]);
    expectContents(over, 100, 2049);
    const big = queueOf([[100, 1500], [1600, 1500]]);
    expect([big.count, big.chunks]).toEqual([1, 2]);
    expectContents(big, 100, 3000);
  });

  it('a piece prepended to a range: one chunk when the two fill exactly 2048 bytes, two when they exceed it', () => {
    const fit = queueOf([[1124, 1024], [100, 1024]]);
    expect([fit.count, fit.chunks]).toEqual([1, 1]);
    expectContents(fit, 100, 2048);
    const over = queueOf([[1124, 1025], [100, 1024]]);
    expect([over.count, over.chunks]).toEqual([1, 2]);
    expectContents(over, 100, 2049);
  });

  it('a piece closing the hole between two ranges: their touching chunks merge only if together they fit 2048 bytes', () => {
    // [100, 600) + [600, 1100) fill 1000 bytes of one chunk; the right range's 1048 make 2048.
    const fit = queueOf([[100, 500], [1100, 1048], [600, 500]]);
    expect([fit.count, fit.chunks]).toEqual([1, 1]);
    expectContents(fit, 100, 2048);
    // 1501 + 1500 bytes exceed it: the joined range keeps two chunks.
    const over = queueOf([[100, 1500], [1601, 1500], [1600, 1]]);
    expect([over.count, over.chunks]).toEqual([1, 2]);
    expectContents(over, 100, 3001);
  });
});
