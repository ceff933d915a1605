import { describe, expect, it } from 'vitest';
import { FaultyLink, seededRandom } from '../../src/link/faulty.js';
import type { FaultyOptions } from '../../src/link/faulty.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/runtime/clock.js';

/** A packet whose first 4 bytes carry its sequence number. */
function pkt(seq: number, size = 100): Uint8Array {
  const p = new Uint8Array(size);
  new DataView(p.buffer).setUint32(0, seq);
  for (let i = 4; i < size; i++) p[i] = (seq + i) & 0xff;
  return p;
}
const seqOf = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset).getUint32(0);

interface Arrival {
  at: number;
  seq: number;
  bytes: string;
}

/** Send `count` packets, `perMs` per millisecond, through a FaultyLink; record arrivals. */
function run(opts: FaultyOptions, count: number, perMs = 1, size = 100) {
  const clock = new VirtualClock();
  const [a, b] = MemoryLink.pair(clock);
  const link = new FaultyLink(a, clock, opts);
  const arrivals: Arrival[] = [];
  b.onReceive((batch) => {
    for (const p of batch) arrivals.push({ at: clock.now(), seq: seqOf(p), bytes: Buffer.from(p).toString('hex') });
  });
  for (let i = 0; i < count; i++) {
    clock.at(Math.floor(i / perMs), () => link.send([pkt(i, size)]));
  }
  clock.runUntil(1e9);
  return { link, arrivals };
}

describe('seededRandom', () => {
  it('is reproducible, in [0, 1), and roughly uniform', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c())).not.toEqual(xs.slice(0, 5));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.49);
    expect(mean).toBeLessThan(0.51);
    const deciles = new Array(10).fill(0);
    for (const x of xs) deciles[Math.floor(x * 10)]++;
    for (const d of deciles) expect(Math.abs(d - 1000)).toBeLessThan(100);
  });
});

describe('FaultyLink', () => {
  const messy: FaultyOptions = { seed: 7, loss: 0.1, duplicate: 0.05, reorder: 0.1, corrupt: 0.05, delayMs: 5, jitterMs: 3 };

  it('is deterministic: the same seed gives the same deliveries, another seed does not', () => {
    const one = run(messy, 2000);
    const two = run(messy, 2000);
    expect(two.arrivals).toEqual(one.arrivals);
    expect(two.link.stats).toEqual(one.link.stats);
    const other = run({ ...messy, seed: 8 }, 2000);
    expect(other.arrivals).not.toEqual(one.arrivals);
  });

  it('loses about the requested fraction of packets', () => {
    for (const loss of [0.01, 0.1, 0.5]) {
      const { link, arrivals } = run({ seed: 99, loss }, 20_000, 10);
      const rate = link.stats.lost / link.stats.sent;
      expect(Math.abs(rate - loss)).toBeLessThan(Math.max(0.005, loss * 0.1));
      expect(arrivals.length).toBe(link.stats.sent - link.stats.lost);
      expect(link.stats.delivered).toBe(arrivals.length);
    }
  });

  it('delivers everything in order, after the delay, when no fault is configured', () => {
    const { link, arrivals } = run({ seed: 1, delayMs: 20 }, 50);
    expect(arrivals.map((a) => a.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(arrivals.map((a) => a.at)).toEqual(Array.from({ length: 50 }, (_, i) => i + 20));
    expect(link.stats).toMatchObject({ sent: 50, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueDrops: 0 });
  });

  it('corrupts by flipping exactly one bit in a copy, leaving the sender\'s packet intact', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair(clock);
    const link = new FaultyLink(a, clock, { seed: 3, corrupt: 1 });
    const got: Uint8Array[] = [];
    b.onReceive((batch) => got.push(...batch));
    const sent = Array.from({ length: 100 }, (_, i) => pkt(i));
    link.send(sent);
    clock.runUntil(10);
    expect(got).toHaveLength(100);
    for (let i = 0; i < 100; i++) {
      expect(sent[i]).toEqual(pkt(i)); // untouched
      let bitsDiffering = 0;
      for (let j = 0; j < 100; j++) {
        let x = got[i]![j]! ^ sent[i]![j]!;
        while (x) {
          bitsDiffering += x & 1;
          x >>>= 1;
        }
      }
      expect(bitsDiffering).toBe(1);
    }
    expect(link.stats.corrupted).toBe(100);
  });

  it('duplicates: both copies arrive, with identical bytes', () => {
    const { link, arrivals } = run({ seed: 5, duplicate: 0.2 }, 1000);
    expect(link.stats.duplicated).toBeGreaterThan(150);
    expect(link.stats.duplicated).toBeLessThan(250);
    expect(arrivals.length).toBe(1000 + link.stats.duplicated);
    const count = new Map<number, number>();
    for (const a of arrivals) count.set(a.seq, (count.get(a.seq) ?? 0) + 1);
    expect([...count.values()].filter((c) => c === 2).length).toBe(link.stats.duplicated);
  });

  it('reorders by holding a packet back so later ones overtake it', () => {
    const { link, arrivals } = run({ seed: 11, reorder: 0.1, delayMs: 10 }, 1000, 4);
    expect(link.stats.reordered).toBeGreaterThan(50);
    expect(arrivals).toHaveLength(1000);
    let inversions = 0;
    for (let i = 1; i < arrivals.length; i++) if (arrivals[i]!.seq < arrivals[i - 1]!.seq) inversions++;
    expect(inversions).toBeGreaterThan(0);
    // Every packet still arrives exactly once.
    expect(new Set(arrivals.map((a) => a.seq)).size).toBe(1000);
  });

  it('models a bottleneck: serialisation time per byte and tail drop at the queue limit', () => {
    // 100-byte packets at 1 byte/ms: 100 ms each; 3 may wait; 10 sent at once.
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair(clock);
    const link = new FaultyLink(a, clock, { seed: 1, rateBytesPerMs: 1, queueLimit: 3, delayMs: 5 });
    const got: Arrival[] = [];
    b.onReceive((batch) => batch.forEach((p) => got.push({ at: clock.now(), seq: seqOf(p), bytes: '' })));
    link.send(Array.from({ length: 10 }, (_, i) => pkt(i)));
    clock.runUntil(150); // the first has left the queue by now: room for one more
    link.send([pkt(10)]);
    clock.runUntil(10_000);
    expect(got.map((g) => [g.seq, g.at])).toEqual([
      [0, 105],
      [1, 205],
      [2, 305],
      [10, 405],
    ]);
    expect(link.stats.queueDrops).toBe(7);
  });

  it('limits throughput to the bottleneck rate', () => {
    // 1000 packets of 1000 bytes offered at 10 per ms into a 125 bytes/ms (1 Mbit/s) link.
    const { link, arrivals } = run({ seed: 2, rateBytesPerMs: 125, queueLimit: 50 }, 1000, 10, 1000);
    const last = arrivals[arrivals.length - 1]!.at;
    expect(arrivals.length).toBe(1000 - link.stats.queueDrops);
    expect((arrivals.length * 1000) / last).toBeCloseTo(125, 0);
  });

  it('setOptions changes faults mid-run (loss off)', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair(clock);
    const link = new FaultyLink(a, clock, { seed: 9, loss: 1 });
    let got = 0;
    b.onReceive((batch) => (got += batch.length));
    link.send([pkt(0), pkt(1)]);
    clock.runUntil(1);
    expect(got).toBe(0);
    link.setOptions({ loss: 0 });
    link.send([pkt(2), pkt(3)]);
    clock.runUntil(2);
    expect(got).toBe(2);
    expect(link.stats).toMatchObject({ sent: 4, lost: 2 });
  });

  it('passes received packets through untouched and delivers nothing after close', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair(clock);
    const link = new FaultyLink(a, clock, { seed: 1, delayMs: 10 });
    const fromPeer: number[] = [];
    link.onReceive((batch) => batch.forEach((p) => fromPeer.push(seqOf(p))));
    b.send([pkt(77)]);
    clock.runUntil(1);
    expect(fromPeer).toEqual([77]);
    let got = 0;
    b.onReceive((batch) => (got += batch.length));
    link.send([pkt(1)]);
    link.close();
    clock.runUntil(100);
    expect(got).toBe(0);
    expect(link.mtu).toBe(a.mtu);
  });
});
