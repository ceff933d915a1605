/**
 * The out-of-order queue's contract at its edges (src/tcp/reassembly.ts): the bounds it is built
 * with, what `holds` says about a segment (the receiver's D-SACK test, RFC 2883 §4.2), and the
 * chunk bound when data grows a range a byte at a time from either side.
 */
import { describe, expect, it } from 'vitest';
import { OutOfOrderQueue } from '../../src/tcp/reassembly.js';

const bytes = (from: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (from + i) & 0xff);

describe('OutOfOrderQueue edges', () => {
  it('refuses impossible bounds and accepts the smallest possible ones', () => {
    expect(() => new OutOfOrderQueue(-1)).toThrow(RangeError);
    expect(() => new OutOfOrderQueue(Number.NaN)).toThrow(RangeError);
    expect(() => new OutOfOrderQueue(10, 0)).toThrow(RangeError);
    expect(() => new OutOfOrderQueue(10, Number.NaN)).toThrow(RangeError);
    const none = new OutOfOrderQueue(0, 1);
    expect(none.insert(10, bytes(10, 5), 0, 1000)).toBe(0);
    const one = new OutOfOrderQueue(100, 1);
    expect(one.insert(10, bytes(10, 5), 0, 1000)).toBe(5);
    expect(one.insert(30, bytes(30, 5), 0, 1000)).toBe(0); // a second range would exceed maxRanges
    expect(one.insert(15, bytes(15, 5), 0, 1000)).toBe(5); // growing the one range is fine
  });

  it('holds() is true only for a non-empty segment lying wholly inside one held range', () => {
    const q = new OutOfOrderQueue(1000);
    q.insert(100, bytes(100, 50), 0, 1000); // [100, 150)
    q.insert(200, bytes(200, 50), 0, 1000); // [200, 250)
    expect([q.holds(100, 50, 0), q.holds(110, 10, 0), q.holds(200, 50, 0), q.holds(249, 1, 0)]).toEqual([true, true, true, true]);
    expect([q.holds(110, 0, 0), q.holds(90, 20, 0), q.holds(140, 20, 0), q.holds(150, 10, 0), q.holds(10, 5, 0), q.holds(240, 20, 0)]).toEqual([
      false, false, false, false, false, false,
    ]);
  });

  it('a range grown one byte at a time, at its end or at its start, keeps few chunks and its right length', () => {
    const q = new OutOfOrderQueue(1 << 16);
    for (let s = 100; s < 3100; s++) q.insert(s, bytes(s, 1), 0, 1 << 16);
    expect([q.count, q.bytes, q.chunks]).toEqual([1, 3000, 2]);
    expect(q.sackBlocks(1)).toEqual([[100, 3100]]);
    const p = new OutOfOrderQueue(1 << 16);
    for (let s = 3099; s >= 100; s--) p.insert(s, bytes(s, 1), 0, 1 << 16);
    expect([p.count, p.bytes, p.chunks]).toEqual([1, 3000, 2]);
    expect(p.sackBlocks(1)).toEqual([[100, 3100]]);
    const out = p.take(100);
    expect(Buffer.concat(out)).toEqual(Buffer.from(bytes(100, 3000)));
  });
});
