/**
 * Handing over reassembled data when RCV.NXT has already moved past some of it (RFC 9293
 * §3.10.7.4: the receiver "should" hold out-of-order segments, and an in-order segment may then
 * cover them, partly or wholly). `take` drops every byte below RCV.NXT, whatever number of held
 * ranges lie there, hands over only what lies at or beyond it, and never an empty piece.
 */
import { describe, expect, it } from 'vitest';
import { OutOfOrderQueue } from '../../src/tcp/reassembly.js';

/** Bytes whose value encodes their stream offset, so misplaced data is visible. */
const pattern = (from: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (from + i) & 0xff);
const joined = (pieces: Uint8Array[]) => Buffer.concat(pieces.map((p) => Buffer.from(p)));

describe('take after RCV.NXT moved past held data (RFC 9293 §3.10.7.4)', () => {
  it('ranges wholly below RCV.NXT are all dropped, not only the first', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(10, pattern(10, 10), 0, 1000); // [10, 20)
    q.insert(30, pattern(30, 10), 0, 1000); // [30, 40)
    q.insert(50, pattern(50, 10), 0, 1000); // [50, 60)
    // An in-order segment [0, 100) arrived and covered all three.
    expect(q.take(100)).toEqual([]);
    expect([q.count, q.bytes, q.chunks]).toEqual([0, 0, 0]);
    expect(q.sackBlocks(4)).toEqual([]);
  });

  it('after ranges wholly below RCV.NXT, a range reaching past it is handed over from RCV.NXT on', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(10, pattern(10, 10), 0, 1000); // [10, 20)
    q.insert(30, pattern(30, 90), 0, 1000); // [30, 120)
    expect(joined(q.take(100))).toEqual(Buffer.from(pattern(100, 20)));
    expect([q.count, q.bytes]).toEqual([0, 0]);
  });

  it('when RCV.NXT falls exactly between two stored pieces, only the bytes after it come out, with no empty piece', () => {
    const q = new OutOfOrderQueue(1 << 16);
    // Two full-sized segments: together too big to be copied into one piece, so held as two.
    q.insert(1000, pattern(1000, 1500), 0, 1 << 16); // [1000, 2500)
    q.insert(2500, pattern(2500, 1500), 0, 1 << 16); // [2500, 4000)
    expect([q.count, q.chunks]).toEqual([1, 2]);
    const out = q.take(2500);
    expect(out.map((p) => p.length)).toEqual([1500]);
    expect(joined(out)).toEqual(Buffer.from(pattern(2500, 1500)));
  });
});
