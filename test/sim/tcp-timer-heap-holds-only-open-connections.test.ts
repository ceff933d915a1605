/**
 * The TCP layer's timer heap holds open connections only: one that closes (an abort, a RST, a
 * TIME-WAIT entry reopened by a new SYN) is taken out at once, not when its old deadline comes
 * up, so a busy server's heap never keeps thousands of dead connections reachable.
 */
import { expect, it } from 'vitest';
import type { Stack } from '../../src/stack.js';
import { B_ADDR, createSim } from '../helpers/sim.js';

/** The layer's private heap size, read for this check only. */
const heapSize = (s: Stack): number => (s.tcp as unknown as { timers: { size: number } }).timers.size;

it('connections that are aborted or leave TIME-WAIT leave the timer heap at once', async () => {
  const sim = createSim({ seed: 5 });
  sim.b.createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => s.end('bye')); // the server closes first: it holds the TIME-WAIT
  }).listen(80);
  // One connection that stays open with a keepalive deadline (10 s), earlier than any TIME-WAIT's
  // end: it sits at the top of the heap, where nothing else would be looked at before it.
  sim.b.createServer((s) => s.setKeepAlive(true, 10_000)).listen(81);
  await sim.clock.sleep(1);
  sim.a.connect({ host: B_ADDR, port: 81 });

  // 20 connections that end with the server in TIME-WAIT (60 s deadlines in the heap).
  for (let i = 0; i < 20; i++) {
    const c = sim.a.connect({ host: B_ADDR, port: 80, localPort: 40000 + i });
    c.on('error', () => {});
    c.on('connect', () => c.write('hi'));
    c.on('data', () => {});
    c.on('end', () => c.end());
  }
  await sim.clock.sleep(2000);
  expect(sim.b.connectionStates()).toEqual({ ESTABLISHED: 1, 'TIME-WAIT': 20 });
  expect(heapSize(sim.b)).toBe(21);

  // The same 4-tuples again: each new SYN reopens its TIME-WAIT entry (RFC 6191); then abort them all.
  const again = [];
  for (let i = 0; i < 20; i++) {
    const c = sim.a.connect({ host: B_ADDR, port: 80, localPort: 40000 + i });
    c.on('error', () => {});
    again.push(c);
  }
  await sim.clock.sleep(1000);
  expect(sim.b.stats()['tcp.time-wait.reused']).toBe(20);
  expect(sim.b.connectionStates()).toEqual({ ESTABLISHED: 21 });
  expect(heapSize(sim.b)).toBe(1); // the TIME-WAIT entries went with their connections
  for (const c of again) c.destroy(); // RST to the server
  await sim.clock.sleep(1000);
  expect(sim.b.connectionStates()).toEqual({ ESTABLISHED: 1 });
  expect(heapSize(sim.b)).toBe(1);
});
