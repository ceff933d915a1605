/**
 * IPv4 reassembly (RFC 791 §3.2, RFC 815) at its defaults and edges: the timeout RFC 1122
 * §3.3.2 asks for (Linux's 30 s), the memory and datagram bounds that keep a fragment flood
 * from growing memory, which datagram is evicted when the one being added to is the oldest,
 * and options outside their range.
 */
import { describe, expect, it } from 'vitest';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { FRAGMENT_OVERHEAD, Reassembler } from '../../src/ip/reassembly.js';

function header(offset: number, len: number, mf: boolean, id = 1): Ipv4Header {
  return { ihl: 20, tos: 0, totalLength: 20 + len, id, df: false, mf, fragmentOffset: offset, ttl: 64, protocol: 17, checksum: 0, src: 0x0a000001, dst: 0x0a000002 };
}

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

describe('reassembly defaults', () => {
  it('an incomplete datagram is dropped 30 s after its first fragment (Linux ipfrag_time), not before', () => {
    const r = new Reassembler();
    r.add(header(0, 8, true), bytes(8), 1000);
    expect(r.nextDeadline()).toBe(31_000);
    r.poll(30_999);
    expect(r.pending).toBe(1);
    r.poll(31_000);
    expect(r.pending).toBe(0);
    expect(r.stats.timeouts).toBe(1);
  });

  it('holds at most 256 datagrams at once, evicting the oldest', () => {
    const r = new Reassembler();
    for (let id = 0; id < 300; id++) r.add(header(0, 8, true, id), bytes(8), id);
    expect(r.pending).toBe(256);
    expect(r.stats['dropped-memory']).toBe(44);
    expect(r.nextDeadline()).toBe(44 + 30_000);
  });

  it('holds at most 4 MiB of fragments (data plus per-fragment overhead)', () => {
    const r = new Reassembler();
    const limit = 4 * 1024 * 1024;
    let most = 0;
    for (let id = 0; id < 100; id++) {
      for (let k = 0; k < 43; k++) {
        r.add(header(k * 1480, 1480, true, id), bytes(1480), id);
        most = Math.max(most, r.bufferedBytes);
      }
    }
    expect(most).toBeLessThanOrEqual(limit);
    expect(most).toBeGreaterThan(limit - (1480 + FRAGMENT_OVERHEAD));
    expect(r.stats['dropped-memory']).toBeGreaterThan(0);
  });
});

describe('reassembly bounds and options', () => {
  it('a maxDatagramBytes above 65535 still stops at 65535 (ping of death)', () => {
    const r = new Reassembler({ maxDatagramBytes: 200_000 });
    expect(r.add(header(65520, 8, false), bytes(8), 0)).toBeUndefined(); // 20 + 65528 > 65535
    expect(r.stats['dropped-too-big']).toBe(1);
    expect(r.add(header(65512, 3, false, 2), bytes(3), 0)).toBeUndefined(); // 20 + 65515 = 65535: fine
    expect(r.stats['dropped-too-big']).toBe(1);
    expect(r.pending).toBe(1);
  });

  it('a fragment that makes a datagram too big also forgets what was held for it', () => {
    const r = new Reassembler({ maxDatagramBytes: 100 });
    r.add(header(0, 16, true), bytes(16), 0);
    expect(r.bufferedBytes).toBe(16 + FRAGMENT_OVERHEAD);
    r.add(header(80, 8, false), bytes(8), 0); // 20 + 88 > 100
    expect(r.pending).toBe(0);
    expect(r.bufferedBytes).toBe(0);
  });

  it('maxDatagrams below 1 still lets one datagram through', () => {
    const r = new Reassembler({ maxDatagrams: 0 });
    expect(r.add(header(0, 8, true), bytes(8, 1), 0)).toBeUndefined();
    expect(r.add(header(8, 8, false), bytes(8, 2), 0)).toEqual(Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]));
  });

  it('when the datagram being added to is the oldest, the next oldest is evicted for it', () => {
    const per = 64 + FRAGMENT_OVERHEAD;
    const r = new Reassembler({ maxTotalBytes: 3 * per });
    r.add(header(0, 64, true, 1), bytes(64), 0); // oldest
    r.add(header(0, 64, true, 2), bytes(64), 1);
    r.add(header(0, 64, true, 3), bytes(64), 2);
    expect(r.bufferedBytes).toBe(3 * per);
    // A second fragment for datagram 1 needs room: datagram 2 goes, not 1 (the oldest) and not 3.
    r.add(header(64, 64, true, 1), bytes(64), 3);
    expect(r.stats['dropped-memory']).toBe(1);
    expect(r.bufferedBytes).toBe(3 * per);
    expect(r.pending).toBe(2);
    expect(r.nextDeadline()).toBe(30_000); // datagram 1 is still the oldest
    // Datagram 1 kept both fragments: its last one completes it (datagram 3 makes room for it).
    expect(r.add(header(128, 8, false, 1), bytes(8), 4)?.length).toBe(136);
    expect(r.stats['dropped-memory']).toBe(2);
    expect(r.pending).toBe(0);
    expect(r.bufferedBytes).toBe(0);
  });

  it('a new datagram evicts the oldest ones until its fragment fits', () => {
    const per = 64 + FRAGMENT_OVERHEAD;
    const r = new Reassembler({ maxTotalBytes: 3 * per });
    for (let id = 1; id <= 3; id++) r.add(header(0, 64, true, id), bytes(64), id);
    r.add(header(0, 128, true, 4), bytes(128), 4); // needs room for two of the others
    expect(r.stats['dropped-memory']).toBe(2);
    expect(r.pending).toBe(2);
    expect(r.nextDeadline()).toBe(3 + 30_000); // datagram 3 is now the oldest
    expect(r.bufferedBytes).toBe(per + 128 + FRAGMENT_OVERHEAD);
  });

  it('adjacent fragments are not overlaps; the last may be shorter than 8 bytes and need not be a multiple of 8', () => {
    const r = new Reassembler();
    expect(r.add(header(8, 8, true), bytes(8, 2), 0)).toBeUndefined();
    expect(r.add(header(16, 5, false), bytes(5, 3), 0)).toBeUndefined();
    const out = r.add(header(0, 8, true), bytes(8, 1), 0);
    expect(out && Array.from(out)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
    expect(r.stats.overlaps).toBe(0);
    expect(r.stats.reassembled).toBe(1);
    expect(r.stats.fragments).toBe(3);
    expect(r.bufferedBytes).toBe(0);
  });

  it('a hole keeps the datagram waiting even when the last fragment is in', () => {
    const r = new Reassembler();
    r.add(header(0, 8, true), bytes(8), 0);
    expect(r.add(header(16, 8, false), bytes(8), 0)).toBeUndefined();
    expect(r.pending).toBe(1);
    expect(r.add(header(8, 8, true), bytes(8), 0)?.length).toBe(24);
  });
});
