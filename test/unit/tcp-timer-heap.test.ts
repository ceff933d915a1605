/**
 * The TCP layer's timer heap (src/tcp/timers.ts TimerHeap): connections filed under their earliest
 * deadline; `poll(now)` runs each due connection once, earliest first; a connection whose deadline
 * moved earlier is moved in place (one entry per connection), and one that closed is taken out.
 * Connections here are stand-ins with just what the heap reads (deadline, heapAt, heapIndex, state).
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
  heapIndex: number;
  state: TcpState;
  nextDeadline(): number;
}

function fake(name: string, deadline: number): Fake {
  return { name, deadline, heapAt: Infinity, heapIndex: -1, state: TcpState.ESTABLISHED, nextDeadline() { return this.deadline; } };
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
    a.deadline = 200; // moved earlier: its entry moves, no second one
    expect(heap.schedule(asConn(a))).toBe(true);
    a.deadline = 250; // later than what it is filed under: nothing to do
    expect(heap.schedule(asConn(a))).toBe(false);
    expect(heap.size).toBe(3);
    expect(pollNames(heap, 199)).toEqual([]); // the closed connection's entry went without running
    expect(heap.size).toBe(2);
    expect(pollNames(heap, 1000)).toEqual(['a', 'b']);
    expect(heap.size).toBe(0);
    expect(heap.nextDeadline()).toBe(Infinity);
  });

  it('a connection taken out never runs, and the heap holds one entry per connection however often deadlines move', () => {
    const heap = new TimerHeap();
    const fakes = Array.from({ length: 10 }, (_, i) => fake(`c${i}`, 1000 + i));
    for (const f of fakes) heap.schedule(asConn(f));
    for (const step of [100, 200]) {
      for (const f of fakes) {
        f.deadline -= step;
        heap.schedule(asConn(f));
      }
    }
    expect(heap.size).toBe(10);
    heap.remove(asConn(fakes[3]!));
    heap.remove(asConn(fakes[0]!));
    heap.remove(asConn(fakes[0]!)); // twice: nothing more happens
    expect(fakes[0]!.heapIndex).toBe(-1);
    expect(fakes[0]!.heapAt).toBe(Infinity);
    expect(heap.size).toBe(8);
    expect(heap.nextDeadline()).toBe(701);
    expect(pollNames(heap, 2000)).toEqual(fakes.filter((_, i) => i !== 0 && i !== 3).map((f) => f.name));
  });
});
