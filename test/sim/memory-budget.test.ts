/**
 * The stack-wide memory budget (src/tcp/memory.ts) and buffer autotuning, on a virtual clock:
 * 1,000 clients that send and whose server application never reads cannot make the server's
 * TCP hold more than its limit; a reader's window grows while it keeps up, shrinks under
 * pressure, and grows again once the hoarders are gone; every byte is given back at the end.
 */
import { describe, expect, it } from 'vitest';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { B_ADDR, createSim } from '../helpers/sim.js';

const LIMIT = 4 << 20;
const HOARDERS = 1000;
const HOARD_BYTES = 32 << 10;

describe('memory budget under 1,000 clients whose server never reads', () => {
  it('[limits.memory-budget] keeps TCP-held bytes under the hard limit, shrinks windows under pressure, regrows them after, gives all back', async () => {
    // A 10 ms round trip: autotuning grows a buffer once per round trip (Linux's
    // tcp_rcv_space_adjust), and on a link without delay there is none — the whole transfer
    // happens at one instant of the virtual clock, and a 64 KiB window never limits it.
    const sim = createSim({ seed: 16, aToB: { delayMs: 5 }, bToA: { delayMs: 5 }, limitsB: { memLimit: LIMIT } });
    const { clock, a, b } = sim;
    const budget = b.tcp.memory;
    let peak = 0;
    const watch = () => {
      peak = Math.max(peak, budget.used);
      return true;
    };

    // A reader on port 81 that keeps up: its receive buffer grows past the initial 64 KiB.
    let read = 0;
    b.createServer((s: TcpSocket) => s.on('data', (d: Buffer) => (read += d.length))).listen(81);
    // Hoarders on port 80: accepted, never read. The sockets' own stream buffers are kept small
    // (1 KiB), so what piles up is in TCP's buffers, the ones the budget governs.
    const held: TcpSocket[] = [];
    b.createServer({ highWaterMark: 1024 }, (s: TcpSocket) => {
      s.pause();
      s.on('error', () => {}); // the hoarders reset their connections at the end
      held.push(s);
    }).listen(80, 2048);
    await clock.sleep(1);

    const reader = a.connect({ host: B_ADDR, port: 81 });
    const chunk = Buffer.alloc(64 << 10, 7);
    // Bounded: the reader is fed until it has read what the checks below need.
    let toWrite = 64 << 20;
    const pump = () => {
      while (toWrite > 0) {
        toWrite -= chunk.length;
        if (!reader.write(chunk)) break;
      }
    };
    reader.on('drain', pump);
    reader.on('connect', pump);
    const readerConn = () => b.tcp.connectionList().find((c) => c.localPort === 81)!;
    await clock.run(() => watch() && read < 4 << 20, 60_000);
    const initial = b.tcp.config.initialRcvBuf;
    const grown = readerConn().rcv.bufSize;
    expect(grown).toBeGreaterThan(initial);

    // 1,000 hoarders, each sending 32 KiB that nobody reads: 32 MB against a 4 MiB budget.
    const clients: TcpSocket[] = [];
    for (let i = 0; i < HOARDERS; i++) {
      const c = a.connect({ host: B_ADDR, port: 80 });
      c.on('error', () => {});
      c.on('connect', () => c.write(Buffer.alloc(HOARD_BYTES, 1)));
      clients.push(c);
    }
    await clock.run(watch, 20_000);
    expect(held.length).toBe(HOARDERS);
    expect(peak, 'TCP-held bytes at their peak').toBeLessThanOrEqual(LIMIT);
    expect(b.stats()['tcp.mem.peak']).toBeLessThanOrEqual(LIMIT);
    expect(b.stats()['tcp.mem.dropped']).toBeGreaterThan(0); // data refused at the limit
    expect(budget.underPressure).toBe(true);
    // The reader's window fell back to the initial size for what it advertises now.
    expect(readerConn().rcv.effectiveBufSize).toBe(initial);

    // The hoarders leave: their memory comes back, pressure ends, the reader's window regrows.
    for (const c of clients) c.destroy();
    const readBefore = read;
    await clock.run(() => watch() && read < readBefore + (8 << 20), 120_000);
    expect(budget.underPressure).toBe(false);
    expect(readerConn().rcv.effectiveBufSize).toBeGreaterThan(initial);

    toWrite = 0;
    reader.end();
    await clock.run(() => b.tcp.connectionList().some((c) => c.state !== 'TIME-WAIT'), 60_000);
    for (const s of held) s.destroy();
    await clock.sleep(200_000);
    expect(budget.used).toBe(0);
  });
});
