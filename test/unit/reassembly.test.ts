import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { FRAGMENT_OVERHEAD, Reassembler } from '../../src/ip/reassembly.js';
import { seededRandom } from '../../src/runtime/random.js';

const SRC = parseAddr('10.0.0.1')!;
const DST = parseAddr('10.0.0.2')!;

interface Frag {
  header: Ipv4Header;
  payload: Uint8Array;
}

function header(offset: number, len: number, mf: boolean, id = 1, src = SRC): Ipv4Header {
  return {
    ihl: 20,
    tos: 0,
    totalLength: 20 + len,
    id,
    df: false,
    mf,
    fragmentOffset: offset,
    ttl: 64,
    protocol: 17,
    checksum: 0,
    src,
    dst: DST,
  };
}

function data(len: number, seed = 1): Uint8Array {
  const rnd = seededRandom(seed);
  return Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
}

/** Cut `payload` into fragments of the given sizes (all but the last multiples of 8). */
function fragment(payload: Uint8Array, sizes: number[], id = 1, src = SRC): Frag[] {
  const out: Frag[] = [];
  let off = 0;
  for (let i = 0; i < sizes.length; i++) {
    const last = i === sizes.length - 1;
    const len = last ? payload.length - off : sizes[i]!;
    out.push({ header: header(off, len, !last, id, src), payload: payload.subarray(off, off + len) });
    off += len;
  }
  return out;
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

/** Feed fragments; return every completed datagram. */
function feed(r: Reassembler, frags: Frag[], now = 0): Uint8Array[] {
  const done: Uint8Array[] = [];
  for (const f of frags) {
    const out = r.add(f.header, f.payload, now);
    if (out) done.push(out);
  }
  return done;
}

describe('Reassembler', () => {
  it('reassembles 3 fragments in every order', () => {
    const payload = data(40);
    const frags = fragment(payload, [16, 16, 8]);
    for (const order of permutations(frags)) {
      const r = new Reassembler();
      const done = feed(r, order);
      expect(done).toHaveLength(1);
      expect(done[0]).toEqual(payload);
      expect(r.bufferedBytes).toBe(0);
      expect(r.pending).toBe(0);
      expect(r.nextDeadline()).toBe(Infinity);
    }
  });

  it('reassembles 4 fragments in all 24 orders, returning only on the last one', () => {
    const payload = data(1000, 2);
    const frags = fragment(payload, [256, 504, 8, 232]);
    const orders = permutations(frags);
    expect(orders).toHaveLength(24);
    for (const order of orders) {
      const r = new Reassembler();
      for (let i = 0; i < order.length; i++) {
        const out = r.add(order[i]!.header, order[i]!.payload, 0);
        if (i < order.length - 1) expect(out).toBeUndefined();
        else expect(out).toEqual(payload);
      }
      expect(r.stats.reassembled).toBe(1);
    }
  });

  it('returns a new buffer: the fragments can be reused afterwards', () => {
    const payload = data(24);
    const frags = fragment(payload, [8, 8, 8]);
    const r = new Reassembler();
    r.add(frags[0]!.header, frags[0]!.payload, 0);
    frags[0]!.payload.fill(0); // the caller reuses its buffer
    r.add(frags[1]!.header, frags[1]!.payload, 0);
    const out = r.add(frags[2]!.header, frags[2]!.payload, 0)!;
    expect(Array.from(out.subarray(0, 8))).toEqual(Array.from(data(24).subarray(0, 8)));
    expect(out.buffer).not.toBe(payload.buffer);
  });

  it('ignores exact duplicates, keeping the first copy', () => {
    const payload = data(48, 5);
    const frags = fragment(payload, [16, 16, 16]);
    const r = new Reassembler();
    expect(r.add(frags[1]!.header, frags[1]!.payload, 0)).toBeUndefined();
    const forged = new Uint8Array(16).fill(0xee); // same offset and length, other bytes
    expect(r.add(frags[1]!.header, forged, 0)).toBeUndefined();
    expect(r.add(frags[0]!.header, frags[0]!.payload, 0)).toBeUndefined();
    expect(r.add(frags[0]!.header, frags[0]!.payload, 0)).toBeUndefined();
    expect(r.add(frags[2]!.header, frags[2]!.payload, 0)).toEqual(payload);
    expect(r.stats.duplicates).toBe(2);
  });

  it('reassembles with every fragment duplicated, in shuffled orders (seeded)', () => {
    const rnd = seededRandom(815);
    const payload = data(200, 9);
    const frags = fragment(payload, [64, 8, 48, 40, 40]);
    for (let n = 0; n < 50; n++) {
      const doubled = [...frags, ...frags];
      for (let i = doubled.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [doubled[i], doubled[j]] = [doubled[j]!, doubled[i]!];
      }
      const r = new Reassembler();
      const done = feed(r, doubled);
      // The first copy of the last missing fragment completes the datagram. Copies that
      // arrive later start a fresh datagram; if a full second set arrives it completes
      // again (IP may duplicate datagrams; transports cope), otherwise it times out.
      expect(done.length).toBeGreaterThanOrEqual(1);
      expect(done.length).toBeLessThanOrEqual(2);
      for (const d of done) expect(d).toEqual(payload);
    }
  });

  describe('overlaps drop the whole datagram', () => {
    const cases: Array<[string, Frag[]]> = [
      ['partial overlap with the previous fragment', [
        { header: header(0, 16, true), payload: data(16) },
        { header: header(8, 16, true), payload: data(16) },
      ]],
      ['partial overlap with the next fragment', [
        { header: header(16, 16, true), payload: data(16) },
        { header: header(8, 16, true), payload: data(16) },
      ]],
      ['same offset, different length', [
        { header: header(0, 16, true), payload: data(16) },
        { header: header(0, 24, true), payload: data(24) },
      ]],
      ['a fragment containing another', [
        { header: header(8, 8, true), payload: data(8) },
        { header: header(0, 32, true), payload: data(32) },
      ]],
      ['the last fragment overlapping', [
        { header: header(0, 16, true), payload: data(16) },
        { header: header(8, 12, false), payload: data(12) },
      ]],
    ];
    for (const [name, frags] of cases) {
      it(name, () => {
        const r = new Reassembler();
        expect(feed(r, frags)).toEqual([]);
        expect(r.stats.overlaps).toBe(1);
        expect(r.pending).toBe(0);
        expect(r.bufferedBytes).toBe(0);
      });
    }

    it('a Teardrop-style pair never yields a datagram', () => {
      const r = new Reassembler();
      const frags = [
        { header: header(0, 24, true), payload: data(24) },
        { header: header(16, 4, false), payload: data(4) }, // ends inside the first fragment
      ];
      expect(feed(r, frags)).toEqual([]);
      expect(r.pending).toBe(0);
    });
  });

  it('drops a non-last fragment whose length is not a multiple of 8, and empty fragments', () => {
    const r = new Reassembler();
    expect(r.add(header(0, 12, true), data(12), 0)).toBeUndefined();
    expect(r.add(header(8, 0, true), new Uint8Array(0), 0)).toBeUndefined();
    expect(r.add(header(8, 0, false), new Uint8Array(0), 0)).toBeUndefined();
    expect(r.stats['bad-length']).toBe(3);
    expect(r.pending).toBe(0);
  });

  it('drops datagrams that would exceed 65535 bytes (ping of death)', () => {
    const r = new Reassembler();
    expect(r.add(header(0, 1480, true), data(1480), 0)).toBeUndefined();
    expect(r.pending).toBe(1);
    // Largest offset (8191 * 8 = 65528) plus 100 bytes: far past 65535.
    expect(r.add(header(65528, 100, false), data(100), 0)).toBeUndefined();
    expect(r.stats['dropped-too-big']).toBe(1);
    expect(r.pending).toBe(0);
    expect(r.bufferedBytes).toBe(0);
    // Exactly 65535 including the 20-byte header is fine.
    const big = data(65515, 4);
    const sizes = Array.from({ length: 44 }, () => 1480); // 44 * 1480 = 65120
    expect(feed(r, fragment(big, [...sizes, 0]))).toEqual([big]);
  });

  it('honours a smaller maxDatagramBytes', () => {
    const r = new Reassembler({ maxDatagramBytes: 1000 });
    expect(feed(r, fragment(data(1000), [512, 0]))).toEqual([]);
    expect(r.stats['dropped-too-big']).toBe(1);
    expect(feed(r, fragment(data(980), [512, 0]))).toHaveLength(1);
  });

  it('drops datagrams whose fragments disagree about the end', () => {
    const r = new Reassembler();
    feed(r, [
      { header: header(0, 8, true), payload: data(8) },
      { header: header(16, 8, false), payload: data(8) }, // end = 24
      { header: header(32, 8, false), payload: data(8) }, // end = 40: conflicting last fragment
    ]);
    expect(r.stats.inconsistent).toBe(1);
    expect(r.pending).toBe(0);
    feed(r, [
      { header: header(16, 8, true, 3), payload: data(8) }, // data up to 24
      { header: header(8, 4, false, 3), payload: data(4) }, // but the end is 12
    ]);
    feed(r, [
      { header: header(8, 4, false, 4), payload: data(4) }, // end = 12
      { header: header(16, 8, true, 4), payload: data(8) }, // beyond the end
    ]);
    expect(r.stats.inconsistent).toBe(3);
    expect(r.pending).toBe(0);
  });

  it('passes a whole (unfragmented) datagram through as a copy', () => {
    const r = new Reassembler();
    const p = data(30);
    const out = r.add(header(0, 30, false), p, 0)!;
    expect(out).toEqual(p);
    expect(out.buffer).not.toBe(p.buffer);
    expect(r.stats.fragments).toBe(0);
  });

  it('keeps datagrams apart by (src, dst, protocol, id)', () => {
    const r = new Reassembler();
    const p1 = data(24, 1);
    const p2 = data(24, 2);
    const p3 = data(24, 3);
    const f1 = fragment(p1, [8, 8, 8], 7);
    const f2 = fragment(p2, [8, 8, 8], 7, parseAddr('10.0.0.9')!); // same id, other source
    const f3 = fragment(p3, [8, 8, 8], 8);
    f3.forEach((f) => (f.header = { ...f.header, id: 7, protocol: 6 })); // same id, other protocol
    const interleaved = [f1[0]!, f2[1]!, f3[2]!, f2[0]!, f3[0]!, f1[2]!, f3[1]!, f2[2]!, f1[1]!];
    const done = feed(r, interleaved);
    expect(done).toEqual([p3, p2, p1]);
  });

  it('times out incomplete datagrams using only `now`', () => {
    const r = new Reassembler({ timeoutMs: 30_000 });
    const frags = fragment(data(24), [8, 8, 8]);
    r.add(frags[0]!.header, frags[0]!.payload, 1000);
    r.add(frags[2]!.header, frags[2]!.payload, 5000);
    expect(r.nextDeadline()).toBe(31_000); // from the first fragment
    const firsts: Array<[Ipv4Header, number[]]> = [];
    r.poll(30_999, (h, bytes) => firsts.push([h, Array.from(bytes)]));
    expect(r.pending).toBe(1);
    r.poll(31_000, (h, bytes) => firsts.push([h, Array.from(bytes)]));
    expect(r.pending).toBe(0);
    expect(r.stats.timeouts).toBe(1);
    expect(r.bufferedBytes).toBe(0);
    expect(r.nextDeadline()).toBe(Infinity);
    // It had the first fragment, so the caller can send Time Exceeded quoting it.
    expect(firsts).toEqual([[frags[0]!.header, Array.from(frags[0]!.payload)]]);
    // The late middle fragment starts a new datagram rather than completing the old one.
    expect(r.add(frags[1]!.header, frags[1]!.payload, 31_001)).toBeUndefined();
    expect(r.pending).toBe(1);
  });

  it('reports no first fragment on timeout when offset 0 never arrived', () => {
    const r = new Reassembler({ timeoutMs: 100 });
    const frags = fragment(data(24), [8, 8, 8]);
    r.add(frags[1]!.header, frags[1]!.payload, 0);
    let called = 0;
    r.poll(100, () => called++);
    expect(called).toBe(0);
    expect(r.stats.timeouts).toBe(1);
  });

  it('expires many datagrams in order of arrival', () => {
    const r = new Reassembler({ timeoutMs: 1000 });
    for (let id = 0; id < 10; id++) r.add(header(0, 8, true, id), data(8), id * 10);
    r.poll(1045);
    expect(r.pending).toBe(5);
    expect(r.nextDeadline()).toBe(1050);
  });

  it('never holds more than maxTotalBytes, evicting the oldest datagrams', () => {
    const maxTotalBytes = 20_000;
    const r = new Reassembler({ maxTotalBytes });
    const rnd = seededRandom(4);
    for (let id = 0; id < 500; id++) {
      const len = 8 * (1 + Math.floor(rnd() * 180));
      r.add(header(8 * Math.floor(rnd() * 100), len, true, id), data(len, id), id);
      expect(r.bufferedBytes).toBeLessThanOrEqual(maxTotalBytes);
    }
    expect(r.stats['dropped-memory']).toBeGreaterThan(0);
    // A datagram whose fragments arrive together still gets through under the flood.
    const payload = data(3000, 99);
    expect(feed(r, fragment(payload, [1480, 1480, 0], 9999), 600)).toEqual([payload]);
    expect(r.bufferedBytes).toBeLessThanOrEqual(maxTotalBytes);
  });

  it('charges per-fragment overhead, so tiny fragments are bounded too', () => {
    const r = new Reassembler({ maxTotalBytes: 10_000 });
    let most = 0;
    for (let i = 0; i < 4000; i++) {
      r.add(header(16 * i, 8, true, 1), data(8), 0); // 8-byte fragments with holes between
      expect(r.bufferedBytes).toBeLessThanOrEqual(10_000);
      expect(r.bufferedBytes % (8 + FRAGMENT_OVERHEAD)).toBe(0);
      most = Math.max(most, r.bufferedBytes);
    }
    // 138 fragments fit (138 * 72 = 9936); the 139th makes the lone datagram give up.
    expect(most).toBe(Math.floor(10_000 / (8 + FRAGMENT_OVERHEAD)) * (8 + FRAGMENT_OVERHEAD));
    expect(r.stats['dropped-memory']).toBeGreaterThan(0);
  });

  it('refuses a fragment bigger than the whole budget', () => {
    const r = new Reassembler({ maxTotalBytes: 1000 });
    expect(r.add(header(0, 1480, true), data(1480), 0)).toBeUndefined();
    expect(r.bufferedBytes).toBe(0);
    expect(r.pending).toBe(0);
    expect(r.stats['dropped-memory']).toBe(1);
  });

  it('bounds the number of datagrams in progress', () => {
    const r = new Reassembler({ maxDatagrams: 16 });
    for (let id = 0; id < 100; id++) r.add(header(0, 8, true, id), data(8), id);
    expect(r.pending).toBe(16);
    expect(r.stats['dropped-memory']).toBe(84);
    expect(r.nextDeadline()).toBe(84 + 30_000); // the oldest survivor
  });
});
