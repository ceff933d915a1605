/**
 * The TCP layer's timer heap (src/tcp/timers.ts TimerHeap): connections filed under their earliest
 * deadline; `poll(now)` runs each due connection once, earliest first; a connection whose deadline
 * moved earlier leaves a stale entry behind that is skipped, and `rebuild` drops them all.
 * Connections here are stand-ins with just what the heap reads (deadline, heapAt, state).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import type { Connection } from '../../src/tcp/connection.js';
import { TcpState } from '../../src/tcp/state.js';
import { TimerHeap } from '../../src/tcp/timers.js';

interface Fake {
  name: string;
  deadline: number;
  heapAt: number;
  state: TcpState;
  nextDeadline(): number;
}

function fake(name: string, deadline: number): Fake {
  return { name, deadline, heapAt: Infinity, state: TcpState.ESTABLISHED, nextDeadline() { return this.deadline; } };
}
const asConn = (f: Fake) => f as unknown as Connection;

/** Poll at `now`, returning the names run, in order. */
function pollNames(heap: TimerHeap, now: number): string[] {
  const ran: string[] = [];
  heap.poll(now, (c) => ran.push((c as unknown as Fake).name));
  return ran;
}

describe('TCP timer heap', () => {
  it('due connections run in deadline order, each once; the rest wait for their time (seeded)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = seededRandom(seed);
      const heap = new TimerHeap();
      const fakes = Array.from({ length: 1 + Math.floor(rand() * 60) }, (_, i) => fake(`c${i}`, Math.floor(rand() * 1000)));
      for (const f of fakes) expect(heap.schedule(asConn(f))).toBe(true);
      expect(heap.size).toBe(fakes.length);
      const sorted = [...fakes].sort((a, b) => a.deadline - b.deadline);
      expect(heap.nextDeadline(), `seed ${seed}`).toBe(sorted[0]!.deadline);
      const ran: string[] = [];
      for (const now of [0, 100, 250, 500, 999]) {
        const batch = pollNames(heap, now);
        const deadlines = batch.map((n) => fakes.find((f) => f.name === n)!.deadline);
        expect(deadlines, `seed ${seed}`).toEqual([...deadlines].sort((a, b) => a - b));
        expect(deadlines.every((d) => d <= now), `seed ${seed}`).toBe(true);
        ran.push(...batch);
        const rest = sorted.filter((f) => f.deadline > now);
        expect(heap.nextDeadline(), `seed ${seed}`).toBe(rest[0]?.deadline ?? Infinity);
      }
      expect([...ran].sort(), `seed ${seed}`).toEqual(fakes.map((f) => f.name).sort());
      expect(heap.size).toBe(0);
      for (const f of fakes) expect(f.heapAt).toBe(Infinity); // unfiled once run
    }
  });

  it('a deadline moved earlier runs once, at the earlier time; a later or equal one is not refiled; a closed connection never runs', () => {
    const heap = new TimerHeap();
    const a = fake('a', 500);
    const b = fake('b', 300);
    const closed = fake('closed', 100);
    heap.schedule(asConn(a));
    heap.schedule(asConn(b));
    heap.schedule(asConn(closed));
    closed.state = TcpState.CLOSED;
    a.deadline = 200; // moved earlier: filed again, the 500 entry is now stale
    expect(heap.schedule(asConn(a))).toBe(true);
    a.deadline = 250; // later than what it is filed under: nothing to do
    expect(heap.schedule(asConn(a))).toBe(false);
    expect(heap.size).toBe(4);
    expect(heap.nextDeadline()).toBe(200); // the closed connection's entry is dropped, not reported
    expect(heap.size).toBe(3);
    expect(pollNames(heap, 199)).toEqual([]);
    expect(pollNames(heap, 1000)).toEqual(['a', 'b']); // the stale 500 entry does not run a again
    expect(heap.size).toBe(0);
    expect(heap.nextDeadline()).toBe(Infinity);
  });

  it('rebuild refiles every connection with a deadline and drops stale entries', () => {
    const heap = new TimerHeap();
    const fakes = Array.from({ length: 10 }, (_, i) => fake(`c${i}`, 1000 + i));
    for (const f of fakes) heap.schedule(asConn(f));
    // Each deadline moves earlier twice: 30 entries for 10 connections.
    for (const step of [100, 200]) {
      for (const f of fakes) {
        f.deadline -= step;
        heap.schedule(asConn(f));
      }
    }
    const idle = fake('idle', Infinity);
    expect(heap.size).toBe(30);
    heap.rebuild([...fakes, idle].map(asConn));
    expect(heap.size).toBe(10);
    expect(idle.heapAt).toBe(Infinity);
    expect(heap.nextDeadline()).toBe(700);
    expect(pollNames(heap, 2000)).toEqual(fakes.map((f) => f.name));
  });
});
