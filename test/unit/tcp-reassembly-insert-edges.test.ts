/**
 * What `insert` stores at the edges of the receive window and of the ranges already held
 * (RFC 9293 §3.10.7.4: only text inside the window is kept; RFC 2018 §4 / RFC 2883: ranges are
 * reported as SACK blocks, most recently changed first, and a segment bringing nothing new is a
 * duplicate, which changes no range).
 */
import { describe, expect, it } from 'vitest';
import { OutOfOrderQueue } from '../../src/tcp/reassembly.js';

const pattern = (from: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (from + i) & 0xff);

describe('insert at the edges of the window and of held ranges', () => {
  it('stores nothing beyond a window that shrank below a range held further out (RFC 9293 §3.10.7.4)', () => {
    const q = new OutOfOrderQueue(1 << 16);
    expect(q.insert(50, pattern(50, 10), 0, 100)).toBe(10); // [50, 60), inside a 100-byte window
    // The window is now 30 bytes: of [10, 80) only [10, 30) may be kept, although [50, 60) is held.
    expect(q.insert(10, pattern(10, 70), 0, 30)).toBe(20);
    expect(q.bytes).toBe(30);
    expect(q.sackBlocks(4).sort((a, b) => a[0] - b[0])).toEqual([
      [10, 30],
      [50, 60],
    ]);
  });

  it('a duplicate ending exactly where an older range ends changes nothing, not even the SACK order (RFC 2018 §4)', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(10, pattern(10, 10), 0, 1000); // [10, 20), older
    q.insert(30, pattern(30, 10), 0, 1000); // [30, 40), newer
    expect(q.sackBlocks(4)).toEqual([
      [30, 40],
      [10, 20],
    ]);
    expect(q.insert(12, pattern(12, 8), 0, 1000)).toBe(0); // [12, 20): all held already
    expect(q.insert(10, pattern(10, 10), 0, 1000)).toBe(0); // [10, 20) again
    expect(q.holds(12, 8, 0)).toBe(true);
    expect(q.sackBlocks(4)).toEqual([
      [30, 40],
      [10, 20],
    ]);
    expect([q.count, q.bytes, q.chunks]).toEqual([2, 20, 2]);
  });
});
