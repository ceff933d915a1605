/**
 * Giving V8's grown young generation back when the link goes quiet (src/runtime/idle-memory.ts):
 * the decision over ticks with fake probes, and the V8 side's collection for real.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { IdleMemory, v8YoungGeneration } from '../../src/runtime/idle-memory.js';

const MiB = 1024 * 1024;

function harness(young = 32 * MiB) {
  const s = { packets: 0, young, collected: 0 };
  const idle = new IdleMemory({
    activity: () => s.packets,
    youngBytes: () => s.young,
    collect: () => {
      s.collected++;
      s.young = 1 * MiB;
    },
  });
  /** One tick after `packets` more arrived; returns whether it collected. */
  const tick = (packets: number): boolean => {
    s.packets += packets;
    return idle.tick();
  };
  return { s, tick };
}

describe('the young generation is given back when traffic stops', () => {
  it('after two quiet ticks that follow a busy one, once', () => {
    const { s, tick } = harness();
    expect(tick(5000)).toBe(false); // busy
    expect(tick(0)).toBe(false); // one quiet tick: V8's 5 s window may still see the burst
    expect(tick(0)).toBe(true);
    expect(s.collected).toBe(1);
    for (let i = 0; i < 10; i++) expect(tick(0)).toBe(false); // once per quiet spell
  });

  it('never while packets flow', () => {
    const { s, tick } = harness();
    for (let i = 0; i < 20; i++) expect(tick(100)).toBe(false);
    expect(s.collected).toBe(0);
  });

  it('a trickle (fewer than 100 packets a tick) counts as quiet and does not re-arm it', () => {
    const { s, tick } = harness();
    tick(1000);
    expect(tick(3)).toBe(false);
    expect(tick(99)).toBe(true);
    s.young = 32 * MiB; // grown again, by something other than traffic
    for (let i = 0; i < 10; i++) expect(tick(5)).toBe(false);
    expect(s.collected).toBe(1);
  });

  it('a busy tick in the middle of the quiet spell starts the count again', () => {
    const { tick } = harness();
    tick(1000);
    expect(tick(0)).toBe(false);
    expect(tick(500)).toBe(false);
    expect(tick(0)).toBe(false);
    expect(tick(0)).toBe(true);
  });

  it('not in a process that was never busy, and not when the space did not grow', () => {
    const never = harness();
    for (let i = 0; i < 10; i++) expect(never.tick(0)).toBe(false);
    const small = harness(2 * MiB);
    small.tick(10_000);
    for (let i = 0; i < 10; i++) expect(small.tick(0)).toBe(false);
    expect(small.s.collected).toBe(0);
    small.s.young = 16 * MiB; // the next spell finds it grown
    small.tick(10_000);
    small.tick(0);
    expect(small.tick(0)).toBe(true);
  });
});

describe('the V8 side', () => {
  it('reports the young generation resident and runs a minor collection on request', async () => {
    expect(v8YoungGeneration.bytes()).toBeGreaterThan(0);
    const kinds: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) kinds.push((e as { detail?: { kind?: number } }).detail?.kind ?? 0);
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      v8YoungGeneration.collect();
      // gc entries are delivered asynchronously; wait a bounded number of turns for ours.
      for (let i = 0; i < 50 && kinds.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      obs.disconnect();
    }
    expect(kinds.some((k) => (k & constants.NODE_PERFORMANCE_GC_MINOR) !== 0)).toBe(true);
  });
});
