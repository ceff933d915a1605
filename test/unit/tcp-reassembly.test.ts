import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import { OutOfOrderQueue } from '../../src/tcp/reassembly.js';
import { seqAdd, seqSub } from '../../src/tcp/seq.js';

const mulberry32 = seededRandom;
const int = (r: () => number, n: number) => Math.floor(r() * n);

function shuffle<T>(r: () => number, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = int(r, i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Bytes whose value encodes their stream offset, so misplaced data is visible. */
const pattern = (from: number, len: number, salt = 0) => Uint8Array.from({ length: len }, (_, i) => (from + i + salt) & 0xff);

const joined = (chunks: Uint8Array[]) => {
  const n = chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
};

/** The chunk bound the queue promises: adjacent chunks together exceed 2048 bytes. */
function expectBounded(q: OutOfOrderQueue): void {
  expect(q.bytes).toBeLessThanOrEqual(q.maxBytes);
  expect(q.count).toBeLessThanOrEqual(q.maxRanges);
  expect(q.chunks).toBeLessThanOrEqual(Math.floor((2 * q.bytes) / 2048) + q.count);
}

describe('OutOfOrderQueue basics', () => {
  it('holds data after a hole and hands it over once the hole is filled', () => {
    const q = new OutOfOrderQueue(1 << 16);
    expect(q.insert(110, pattern(10, 10), 100, 1000)).toBe(10);
    expect(q.insert(130, pattern(30, 5), 100, 1000)).toBe(5);
    expect(q.count).toBe(2);
    expect(q.bytes).toBe(15);
    expect(q.take(100)).toEqual([]); // hole at 100..110
    // The connection delivers 100..120 in order itself, then asks for what follows.
    const got = q.take(120);
    expect(joined(got)).toEqual(new Uint8Array(0)); // 110..120 was entirely below rcvNxt
    expect(q.count).toBe(1);
    expect(joined(q.take(130))).toEqual(pattern(30, 5));
    expect(q.count).toBe(0);
    expect(q.bytes).toBe(0);
  });

  it('take trims the part below rcvNxt and continues through contiguous data', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(10, pattern(10, 10), 0, 1000);
    q.insert(20, pattern(20, 10), 0, 1000); // adjacent: same range
    expect(q.count).toBe(1);
    expect(joined(q.take(15))).toEqual(pattern(15, 15));
    expect(q.bytes).toBe(0);
  });

  it('keeps what is stored when a new segment overlaps it', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(20, pattern(20, 10), 0, 1000);
    // Different bytes (salt 100) covering 15..35: only 15..20 and 30..35 are new.
    expect(q.insert(15, pattern(15, 20, 100), 0, 1000)).toBe(10);
    expect(q.insert(15, pattern(15, 20, 100), 0, 1000)).toBe(0); // pure duplicate
    const out = joined(q.take(15));
    expect(out).toEqual(Uint8Array.from([...pattern(15, 5, 100), ...pattern(20, 10), ...pattern(30, 5, 100)]));
  });

  it('fills several holes with one segment and joins the ranges', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(10, pattern(10, 5), 0, 1000);
    q.insert(20, pattern(20, 5), 0, 1000);
    q.insert(30, pattern(30, 5), 0, 1000);
    expect(q.count).toBe(3);
    expect(q.insert(5, pattern(5, 40, 7), 0, 1000)).toBe(40 - 15);
    expect(q.count).toBe(1);
    expect(q.sackBlocks(4)).toEqual([[5, 45]]);
    const out = joined(q.take(5));
    const want = pattern(5, 40, 7);
    want.set(pattern(10, 5), 5);
    want.set(pattern(20, 5), 15);
    want.set(pattern(30, 5), 25);
    expect(out).toEqual(want);
  });

  it('stores only what lies inside [rcvNxt, rcvNxt + window)', () => {
    const q = new OutOfOrderQueue(1 << 16);
    expect(q.insert(90, pattern(90, 30), 100, 15)).toBe(15); // 100..115
    expect(q.sackBlocks(1)).toEqual([[100, 115]]);
    expect(q.insert(115, pattern(115, 10), 100, 15)).toBe(0); // right of the window
    expect(q.insert(50, pattern(50, 50), 100, 15)).toBe(0); // entirely old
    expect(q.insert(200, pattern(200, 10), 100, 0)).toBe(0); // zero window
    expect(q.insert(100, new Uint8Array(0), 100, 15)).toBe(0);
    expect(joined(q.take(100))).toEqual(pattern(100, 15));
  });

  it('copies the payload: reusing the packet buffer does not change stored data', () => {
    const q = new OutOfOrderQueue(1 << 16);
    const packet = Buffer.from(pattern(0, 64));
    q.insert(1010, packet.subarray(10, 20), 1000, 1000); // a Buffer view, like a real link gives
    q.insert(1030, packet.subarray(30, 40), 1000, 1000);
    packet.fill(0xee);
    expect(joined(q.take(1000 + 0))).toEqual(new Uint8Array(0));
    expect(joined(q.take(1010))).toEqual(pattern(10, 10));
    expect(joined(q.take(1030))).toEqual(pattern(30, 10));
  });

  it('clear empties the queue', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(10, pattern(10, 10), 0, 100);
    q.insert(30, pattern(30, 10), 0, 100);
    q.clear();
    expect(q.bytes).toBe(0);
    expect(q.count).toBe(0);
    expect(q.chunks).toBe(0);
    expect(q.take(10)).toEqual([]);
    expect(q.sackBlocks(3)).toEqual([]);
  });
});

describe('OutOfOrderQueue across the 2^32 wrap', () => {
  it('stores, joins and takes data that straddles 0xffffffff -> 0', () => {
    const rcvNxt = 0xfffffff0;
    const q = new OutOfOrderQueue(1 << 16);
    const stream = pattern(0, 64);
    expect(q.insert(seqAdd(rcvNxt, 8), stream.subarray(8, 24), rcvNxt, 1000)).toBe(16); // 0xfffffff8 .. 0x8
    expect(q.insert(seqAdd(rcvNxt, 30), stream.subarray(30, 40), rcvNxt, 1000)).toBe(10); // 0xe .. 0x18
    expect(q.sackBlocks(2)).toEqual([
      [0x0e, 0x18],
      [0xfffffff8, 0x08],
    ]);
    expect(q.insert(seqAdd(rcvNxt, 20), stream.subarray(20, 32), rcvNxt, 1000)).toBe(6); // joins them
    expect(q.sackBlocks(2)).toEqual([[0xfffffff8, 0x18]]);
    expect(joined(q.take(rcvNxt))).toEqual(new Uint8Array(0));
    expect(joined(q.take(seqAdd(rcvNxt, 8)))).toEqual(stream.subarray(8, 40));
  });

  it('clips the window across the wrap', () => {
    const q = new OutOfOrderQueue(1 << 16);
    expect(q.insert(0xfffffffc, pattern(0, 16), 0xfffffffe, 6)).toBe(6); // keeps 0xfffffffe .. 0x4
    expect(q.sackBlocks(1)).toEqual([[0xfffffffe, 4]]);
    expect(joined(q.take(0xfffffffe))).toEqual(pattern(2, 6));
  });
});

describe('OutOfOrderQueue SACK blocks (RFC 2018 §4)', () => {
  it('lists the most recently changed range first, at most n', () => {
    const q = new OutOfOrderQueue(1 << 16);
    q.insert(100, pattern(0, 10), 0, 10_000); // A
    q.insert(300, pattern(0, 10), 0, 10_000); // B
    q.insert(200, pattern(0, 10), 0, 10_000); // C
    expect(q.sackBlocks(4)).toEqual([[200, 210], [300, 310], [100, 110]]);
    q.insert(110, pattern(0, 5), 0, 10_000); // A grows: now the latest
    expect(q.sackBlocks(4)).toEqual([[100, 115], [200, 210], [300, 310]]);
    q.insert(295, pattern(0, 5), 0, 10_000); // B grows at its left edge
    expect(q.sackBlocks(2)).toEqual([[295, 310], [100, 115]]);
    expect(q.sackBlocks(0)).toEqual([]);
    q.insert(50, pattern(0, 1), 0, 10_000); // a duplicate changes nothing...
    q.insert(100, pattern(0, 5), 0, 10_000);
    expect(q.sackBlocks(1)).toEqual([[50, 51]]); // ...but the new range at 50 does
  });
});

describe('OutOfOrderQueue bounds', () => {
  it('never holds more than maxBytes, keeping the bytes nearest rcvNxt', () => {
    const q = new OutOfOrderQueue(100);
    expect(q.insert(10, pattern(10, 60), 0, 10_000)).toBe(60);
    expect(q.insert(200, pattern(200, 60), 0, 10_000)).toBe(40); // only 40 fit
    expect(q.bytes).toBe(100);
    expect(q.insert(80, pattern(80, 10), 0, 10_000)).toBe(0);
    expect(q.sackBlocks(2)).toEqual([[200, 240], [10, 70]]);
    // One segment spanning several holes fills them left to right until full.
    const r = new OutOfOrderQueue(30);
    r.insert(10, pattern(10, 10), 0, 1000);
    expect(r.insert(0, pattern(0, 100), 0, 1000)).toBe(20); // 0..10 and 20..30
    expect(r.sackBlocks(1)).toEqual([[0, 30]]);
  });

  it('never holds more than maxRanges disjoint ranges', () => {
    const q = new OutOfOrderQueue(1 << 16, 4);
    for (let k = 0; k < 4; k++) expect(q.insert(10 + 20 * k, pattern(0, 5), 0, 1000)).toBe(5);
    expect(q.insert(500, pattern(0, 5), 0, 1000)).toBe(0); // a fifth hole: refused
    expect(q.count).toBe(4);
    expect(q.insert(15, pattern(0, 5), 0, 1000)).toBe(5); // extending a range is fine
    expect(q.insert(20, pattern(0, 10), 0, 1000)).toBe(10); // and joining two
    expect(q.count).toBe(3);
    expect(q.insert(500, pattern(0, 5), 0, 1000)).toBe(5); // now there is room again
  });

  it('tiny segments cannot blow up the chunk count (1-byte segments, every order)', () => {
    const r = mulberry32(21);
    for (const order of ['forward', 'reverse', 'random', 'odd-then-even'] as const) {
      const q = new OutOfOrderQueue(1 << 20, 100_000);
      const n = 20_000;
      let offsets = Array.from({ length: n }, (_, i) => i + 1); // 0 stays a hole
      if (order === 'reverse') offsets.reverse();
      if (order === 'random') offsets = shuffle(r, offsets);
      if (order === 'odd-then-even') offsets = [...offsets.filter((x) => x % 2), ...offsets.filter((x) => x % 2 === 0)];
      for (const o of offsets) q.insert(o, pattern(o, 1), 0, 1 << 20);
      expectBounded(q);
      expect(q.count).toBe(1);
      expect(q.chunks).toBeLessThanOrEqual(Math.floor((2 * n) / 2048) + 1);
      expect(joined(q.take(1))).toEqual(pattern(1, n));
    }
  });
});

/**
 * A receiver in miniature, as the connection uses the queue: in-order data is
 * delivered at once, anything after a hole is queued, and after each delivery
 * the queue hands over what became contiguous.
 */
class Receiver {
  delivered: Uint8Array[] = [];
  length = 0;
  constructor(
    public rcvNxt: number,
    readonly q: OutOfOrderQueue,
    readonly window: number,
  ) {}

  receive(seq: number, payload: Uint8Array): void {
    const ahead = seqSub(seq, this.rcvNxt);
    if (ahead > 0) {
      this.q.insert(seq, payload, this.rcvNxt, this.window);
      return;
    }
    if (ahead + payload.length <= 0) return; // old duplicate
    this.deliver(payload.subarray(-ahead));
    for (const c of this.q.take(this.rcvNxt)) this.deliver(c);
  }

  deliver(c: Uint8Array): void {
    this.delivered.push(Uint8Array.from(c));
    this.length += c.length;
    this.rcvNxt = seqAdd(this.rcvNxt, c.length);
  }
}

describe('OutOfOrderQueue property: any segmentation, order, duplication and overlap reassembles the stream', () => {
  for (let seed = 1; seed <= 40; seed++) {
    it(`seed ${seed}`, () => {
      const r = mulberry32(1000 + seed);
      const total = 1 + int(r, 30_000);
      const stream = Uint8Array.from({ length: total }, () => int(r, 256));
      // Start near the wrap half the time, so sequence numbers cross 0xffffffff -> 0.
      const isn = r() < 0.5 ? (0xffffffff - int(r, total)) >>> 0 : int(r, 2 ** 32) >>> 0;

      // One segmentation covering everything, plus overlapping extras and duplicates.
      const segs: Array<[number, number]> = [];
      for (let at = 0; at < total; ) {
        const len = Math.min(total - at, 1 + int(r, r() < 0.2 ? 20 : 1500));
        segs.push([at, len]);
        at += len;
      }
      const extras = int(r, segs.length);
      for (let k = 0; k < extras; k++) {
        const at = int(r, total);
        segs.push([at, Math.min(total - at, 1 + int(r, 3000))]);
      }
      const dups = int(r, segs.length / 2);
      for (let k = 0; k < dups; k++) segs.push(segs[int(r, segs.length)]!);

      const maxBytes = r() < 0.5 ? 1 << 20 : 2000 + int(r, 10_000); // sometimes tight
      const maxRanges = r() < 0.5 ? 256 : 1 + int(r, 8);
      const window = Math.max(maxBytes, 1 + int(r, 65_536));
      const q = new OutOfOrderQueue(maxBytes, maxRanges);
      const rx = new Receiver(isn, q, window);

      // Deliver shuffled; what the queue refused is "retransmitted" in later rounds.
      for (let round = 0; round < 200 && rx.length < total; round++) {
        for (const [at, len] of shuffle(r, [...segs])) {
          rx.receive(seqAdd(isn, at), stream.subarray(at, at + len));
          expectBounded(q);
        }
      }
      expect(rx.length).toBe(total);
      expect(joined(rx.delivered)).toEqual(stream);
      expect(q.bytes).toBe(0);
      expect(q.count).toBe(0);
      expect(q.chunks).toBe(0);
    });
  }
});
