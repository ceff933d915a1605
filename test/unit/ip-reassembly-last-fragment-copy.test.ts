/**
 * A second copy of the last fragment (MF = 0) that arrives with MF set. Its data lies wholly
 * inside what the datagram already holds and ends exactly at the known end, so it adds nothing
 * and contradicts nothing: it is an exact duplicate (same offset, same length), ignored with the
 * first copy kept, as for any duplicate (RFC 791 §3.2 fills each hole once; RFC 5722 drops only
 * overlaps, and Linux's IPv4 reassembly ignores such a copy the same way). Only data *beyond*
 * the end a last fragment fixed makes the datagram inconsistent.
 */
import { describe, expect, it } from 'vitest';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { Reassembler } from '../../src/ip/reassembly.js';

function header(offset: number, len: number, mf: boolean): Ipv4Header {
  return { ihl: 20, tos: 0, totalLength: 20 + len, id: 7, df: false, mf, fragmentOffset: offset, ttl: 64, protocol: 17, checksum: 0, src: 0x0a000001, dst: 0x0a000002 };
}

const data = (offset: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (offset + i) & 0xff);

describe('a copy of the last fragment with MF set', () => {
  it('is ignored as a duplicate and the datagram still completes (RFC 791 §3.2, RFC 5722)', () => {
    const r = new Reassembler();
    expect(r.add(header(0, 8, true), data(0, 8), 0)).toBeUndefined();
    expect(r.add(header(16, 8, false), data(16, 8), 1)).toBeUndefined(); // the end is now 24
    expect(r.add(header(16, 8, true), data(16, 8), 2)).toBeUndefined(); // ends at 24, MF set
    expect(r.stats.duplicates).toBe(1);
    expect(r.stats.inconsistent).toBe(0);
    expect(r.pending).toBe(1);
    expect(r.add(header(8, 8, true), data(8, 8), 3)).toEqual(data(0, 24));
    expect(r.stats.reassembled).toBe(1);
  });

  it('one that reaches past the known end drops the datagram as inconsistent', () => {
    const r = new Reassembler();
    r.add(header(0, 8, true), data(0, 8), 0);
    r.add(header(16, 8, false), data(16, 8), 1);
    expect(r.add(header(16, 16, true), data(16, 16), 2)).toBeUndefined();
    expect(r.stats.inconsistent).toBe(1);
    expect(r.pending).toBe(0);
  });
});
