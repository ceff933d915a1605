/**
 * IPv4 fragments that disagree about where the datagram ends (RFC 791 §3.2: the fragment with
 * MF = 0 fixes the total length, so no fragment may carry data beyond it). Such a datagram can
 * never be rebuilt correctly; like an overlap (RFC 5722, which Linux applies to IPv4 as well) it
 * is dropped as soon as the conflict is seen — its memory freed at once, and silently: it is not
 * held until the reassembly timeout, so no ICMP Time Exceeded (RFC 792) is sent for it either.
 */
import { describe, expect, it } from 'vitest';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { Reassembler } from '../../src/ip/reassembly.js';

function header(offset: number, len: number, mf: boolean): Ipv4Header {
  return { ihl: 20, tos: 0, totalLength: 20 + len, id: 9, df: false, mf, fragmentOffset: offset, ttl: 64, protocol: 17, checksum: 0, src: 0x0a000001, dst: 0x0a000002 };
}

interface Frag {
  name: string;
  offset: number;
  len: number;
  mf: boolean;
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

describe('fragments that disagree about the end of the datagram', () => {
  // The first fragment, a hole at 8..16 (so the datagram never completes by accident), a
  // fragment up to 24, the "last" fragment ending at 32 — and a fragment with data at 40..48,
  // beyond that end.
  const frags: Frag[] = [
    { name: 'first 0..8', offset: 0, len: 8, mf: true },
    { name: 'middle 16..24', offset: 16, len: 8, mf: true },
    { name: 'last 24..32', offset: 24, len: 8, mf: false },
    { name: 'beyond 40..48', offset: 40, len: 8, mf: true },
  ];

  for (const order of permutations(frags)) {
    it(`are dropped at once, in the order ${order.map((f) => f.name).join(', ')}`, () => {
      const r = new Reassembler({ timeoutMs: 30_000 });
      const conflictAt = Math.max(order.findIndex((f) => !f.mf), order.findIndex((f) => f.offset === 40));
      order.forEach((f, i) => {
        expect(r.add(header(f.offset, f.len, f.mf), new Uint8Array(f.len).fill(i + 1), 1000 + i)).toBeUndefined();
        if (i < conflictAt) {
          expect(r.pending).toBe(1);
        } else if (i === conflictAt) {
          // Forgotten now, not 30 s later.
          expect(r.pending).toBe(0);
          expect(r.bufferedBytes).toBe(0);
          expect(r.stats.inconsistent).toBe(1);
        }
      });
      expect(r.stats.overlaps).toBe(0);
      // Whatever arrived after the conflict starts over; the dropped datagram itself is never
      // reported as timed out.
      const timedOut: number[] = [];
      r.poll(1000 + 60_000, (h) => timedOut.push(h.fragmentOffset));
      const laterFirst = order.slice(conflictAt + 1).some((f) => f.offset === 0);
      expect(timedOut).toEqual(laterFirst ? [0] : []);
    });
  }

  it('a last fragment ending before data already held is refused even after a shorter fragment came in between', () => {
    const r = new Reassembler();
    r.add(header(40, 8, true), new Uint8Array(8), 0); // data up to 48
    r.add(header(0, 8, true), new Uint8Array(8), 0); // ends at 8: the furthest end is still 48
    expect(r.add(header(24, 8, false), new Uint8Array(8), 0)).toBeUndefined(); // claims the end is 32
    expect(r.stats.inconsistent).toBe(1);
    expect(r.pending).toBe(0);
    expect(r.bufferedBytes).toBe(0);
    let reported = 0;
    r.poll(120_000, () => reported++);
    expect(reported).toBe(0);
    expect(r.stats.timeouts).toBe(0);
  });
});
