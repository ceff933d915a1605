/**
 * Reliability under every fault FaultyLink can inject (loss, duplication, reordering,
 * corruption, delay, jitter), in both directions at once, for many seeds: every byte arrives
 * exactly once and in order, both sides close cleanly (through TIME-WAIT), and nothing is left
 * behind — no connection, no deadline, no pile of timer entries.
 *
 * Everything follows from the seed; a failure message starts with the seed and the faults, so
 * `transfer(seed, ...)` replays it exactly.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { FaultyOptions } from '../../src/link/faulty.js';
import { seededRandom } from '../../src/runtime/random.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';

/** Linux's: TIME-WAIT lasts 60 s, longer than any backed-off retransmission of a last FIN here. */
const MSL = 30_000;

type Faults = Omit<FaultyOptions, 'seed'>;

/** NETSTACK_SOAK=10 runs ten times as many seeds (a longer hunt; the default fits CI). */
const SOAK = Math.max(1, Number(process.env['NETSTACK_SOAK'] ?? 1));

/** Faults drawn from the seed: up to 10% loss, 5% duplication, 10% reordering, 2% corruption. */
function faultsFor(seed: number): { aToB: Faults; bToA: Faults } {
  const r = seededRandom(seed * 7919 + 17);
  const draw = (): Faults => ({
    loss: r() * 0.1,
    duplicate: r() * 0.05,
    reorder: r() * 0.1,
    corrupt: r() * 0.02,
    delayMs: 1 + Math.floor(r() * 20),
    jitterMs: Math.floor(r() * 10),
  });
  return { aToB: draw(), bToA: draw() };
}

/** Write `data` in pieces, honouring backpressure, then end(). */
function pump(socket: TcpSocket, data: Buffer, piece: number): void {
  let off = 0;
  const go = (): void => {
    while (off < data.length) {
      const chunk = data.subarray(off, off + piece);
      off += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', go);
        return;
      }
    }
    socket.end();
  };
  go();
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);

interface Outcome {
  /** Why it failed, with the seed first; empty when everything held. */
  problems: string[];
  maxTimers: number;
  /** Both stacks' counters summed. */
  stats: Record<string, number>;
}

/**
 * A sends `sizeAB` bytes to B while B sends `sizeBA` to A, both over faulty links; both end
 * their direction when done (half-close allowed, so neither cuts the other short).
 */
async function transfer(
  seed: number,
  sizeAB: number,
  sizeBA: number,
  faults = faultsFor(seed),
  shape: { mtu?: number; rcvBuf?: number; sndBuf?: number; wscale?: number; slowReaders?: boolean; offload?: boolean | [boolean, boolean] } = {},
  limitMs = 1_800_000,
): Promise<Outcome> {
  const { mtu, slowReaders, offload, ...buffers } = shape;
  const sim = createSim({ seed, ...faults, mtu, offload, tcp: { msl: MSL, ...buffers } });
  const { clock, a, b } = sim;
  const toB = randomBytes(sizeAB, seed * 2 + 1);
  const toA = randomBytes(sizeBA, seed * 2 + 2);
  const gotB: Buffer[] = [];
  const gotA: Buffer[] = [];
  const events = { a: [] as string[], b: [] as string[] };
  const piece = 1 + Math.floor(seededRandom(seed)() * 20_000); // odd write sizes, from the seed
  // A slow reader stops reading now and then, for up to a second: the window closes.
  const readerRand = seededRandom(seed * 13 + 5);
  const dawdle = (socket: TcpSocket): void => {
    socket.on('data', () => {
      if (readerRand() < 0.2) {
        socket.pause();
        clock.at(clock.now() + readerRand() * 1000, () => socket.resume());
      }
    });
  };

  // A slow server reader buffers little in its stream, so its pauses close the TCP window.
  b.createServer({ allowHalfOpen: true, highWaterMark: slowReaders ? 1024 : undefined }, (s) => {
    s.on('data', (d: Buffer) => gotB.push(d));
    if (slowReaders) dawdle(s);
    s.on('end', () => events.b.push('end'));
    s.on('close', () => events.b.push('close'));
    s.on('error', (e: Error & { code?: string }) => events.b.push(`error ${e.code}`));
    pump(s, toA, piece);
  }).listen(80);
  await clock.sleep(1);
  const c = a.connect({ host: B_ADDR, port: 80, allowHalfOpen: true });
  c.on('data', (d: Buffer) => gotA.push(d));
  if (slowReaders) dawdle(c);
  c.on('end', () => events.a.push('end'));
  c.on('close', () => events.a.push('close'));
  c.on('error', (e: Error & { code?: string }) => events.a.push(`error ${e.code}`));
  c.on('connect', () => pump(c, toB, piece));

  let maxTimers = 0;
  // Memory stays bounded: received data within the buffer (plus less than one window unit of
  // rounding), queued send data within the send buffer plus the one chunk that crossed it.
  const memory: string[] = [];
  const sample = () => {
    maxTimers = Math.max(maxTimers, a.stats()['tcp.timers']!, b.stats()['tcp.timers']!);
    for (const conn of [...a.tcp.connectionList(), ...b.tcp.connectionList()]) {
      const held = conn.rcvBuffered + conn.rcv.oooBytes;
      if (held >= conn.config.rcvBuf + (1 << conn.rcv.wscale) && memory.length < 5) {
        memory.push(`t=${clock.now()}: ${held} bytes received and held, rcvBuf ${conn.config.rcvBuf}`);
      }
      if (conn.snd.buffer.length > conn.config.sndBuf + piece && memory.length < 5) {
        memory.push(`t=${clock.now()}: ${conn.snd.buffer.length} bytes queued to send, sndBuf ${conn.config.sndBuf}`);
      }
    }
  };
  const done = () => events.a.includes('close') && events.b.includes('close');
  const finished = await clock.run(() => (sample(), !done()), limitMs);
  // The sockets are closed; the connections finish their close handshake and TIME-WAIT.
  const idle = () => a.tcp.connectionCount === 0 && b.tcp.connectionCount === 0;
  // (A last FIN retransmitted after a long backoff may still be on its way: allow 30 minutes.)
  await clock.run(() => (sample(), !idle()), 1_800_000);
  sample();

  const problems: string[] = [...memory];
  if (!finished) problems.push(`did not finish within ${limitMs / 60_000} virtual minutes (events A ${events.a}, B ${events.b})`);
  const recvB = Buffer.concat(gotB);
  const recvA = Buffer.concat(gotA);
  if (!recvB.equals(toB)) problems.push(`A->B: sent ${toB.length} bytes sha ${sha(toB)}, got ${recvB.length} bytes sha ${sha(recvB)}`);
  if (!recvA.equals(toA)) problems.push(`B->A: sent ${toA.length} bytes sha ${sha(toA)}, got ${recvA.length} bytes sha ${sha(recvA)}`);
  for (const side of ['a', 'b'] as const) {
    const ev = events[side];
    if (ev.some((e) => e.startsWith('error'))) problems.push(`${side.toUpperCase()} socket error: ${ev}`);
    const stack = side === 'a' ? a : b;
    if (stack.connections().length > 0) problems.push(`${side.toUpperCase()} still holds ${JSON.stringify(stack.connections())}`);
    if (stack.tcp.nextDeadline() !== Infinity) problems.push(`${side.toUpperCase()} still has a deadline`);
    const last = sim.transitions(side).at(-1);
    if (last?.to !== 'CLOSED') problems.push(`${side.toUpperCase()} ended in ${last?.to}`);
  }
  // Exactly one side went through TIME-WAIT (or both, when the FINs crossed).
  const tw = (['a', 'b'] as const).filter((s) => sim.states(s).includes('FIN-WAIT-2>TIME-WAIT') || sim.states(s).includes('CLOSING>TIME-WAIT'));
  if (tw.length === 0) problems.push('nobody went through TIME-WAIT');
  if (problems.length > 0) {
    problems.unshift(`seed ${seed}, sizes ${sizeAB}/${sizeBA}, write piece ${piece}, shape ${JSON.stringify(shape)}, faults ${JSON.stringify(faults)}`);
    problems.push('transitions:', ...sim.trace);
  }
  const stats: Record<string, number> = { ...a.stats() };
  for (const [k, v] of Object.entries(b.stats())) stats[k] = (stats[k] ?? 0) + v;
  return { problems, maxTimers, stats };
}

describe('reliability over a faulty link, both directions at once', () => {
  it('200 seeds, small transfers (0 to 30 kB each way)', async () => {
    let maxTimers = 0;
    for (let seed = 1; seed <= 200 * SOAK; seed++) {
      const r = seededRandom(seed * 31 + 1);
      const sizeAB = r() < 0.1 ? 0 : Math.floor(r() * 30_000);
      const sizeBA = r() < 0.1 ? 0 : Math.floor(r() * 30_000);
      const out = await transfer(seed, sizeAB, sizeBA);
      expect(out.problems, out.problems.join('\n')).toEqual([]);
      maxTimers = Math.max(maxTimers, out.maxTimers);
    }
    // One connection per side: the timer heap stays tiny (stale entries are dropped as they surface).
    expect(maxTimers).toBeLessThan(64);
  });

  it('200 seeds, small transfers over small MTUs, small buffers, all window scales (zero windows, persist probes)', async () => {
    let probes = 0;
    for (let seed = 100_001; seed <= 100_000 + 200 * SOAK; seed++) {
      const r = seededRandom(seed * 31 + 2);
      const shape = {
        mtu: [576, 1500, 9000][Math.floor(r() * 3)]!,
        rcvBuf: [2048, 4096, 16_384, 65_536][Math.floor(r() * 4)]!,
        sndBuf: [1024, 8192, 65_536][Math.floor(r() * 3)]!,
        wscale: [0, 2, 7, 14][Math.floor(r() * 4)]!,
        slowReaders: true,
      };
      const out = await transfer(seed, Math.floor(r() * 40_000), Math.floor(r() * 40_000), faultsFor(seed), shape);
      expect(out.problems, out.problems.join('\n')).toEqual([]);
      expect(out.maxTimers, `seed ${seed}`).toBeLessThan(64);
      probes += out.stats['tcp.persist.probe'] ?? 0;
    }
    expect(probes).toBeGreaterThan(0); // the windows really did close
  });

  it('emulated offload, 60 seeds: super-segments lost, duplicated and reordered whole (no corruption), up to 300 kB each way', async () => {
    const sums = { gsoOut: 0, gsoIn: 0 };
    for (let seed = 700_001; seed <= 700_000 + 60 * SOAK; seed++) {
      const r = seededRandom(seed * 31 + 3);
      const { aToB, bToA } = faultsFor(seed);
      const faults = { aToB: { ...aToB, corrupt: 0 }, bToA: { ...bToA, corrupt: 0 } };
      const shape = { offload: true, rcvBuf: [16_384, 65_536, 1 << 20][Math.floor(r() * 3)]!, slowReaders: r() < 0.3 };
      const out = await transfer(seed, Math.floor(r() * 300_000), Math.floor(r() * 300_000), faults, shape);
      expect(out.problems, out.problems.join('\n')).toEqual([]);
      sums.gsoOut += out.stats['tcp.out.gso'] ?? 0;
      sums.gsoIn += out.stats['link.offload.gso.in'] ?? 0;
    }
    // Super-segments really went out and really arrived whole.
    expect(sums.gsoOut).toBeGreaterThan(100);
    expect(sums.gsoIn).toBeGreaterThan(100);
  });

  it('emulated offload on one side only, 40 seeds with corruption: the link cuts super-segments into checksummed wire segments', async () => {
    let gsoOut = 0;
    for (let seed = 710_001; seed <= 710_000 + 40 * SOAK; seed++) {
      const r = seededRandom(seed * 31 + 4);
      const offload: [boolean, boolean] = r() < 0.5 ? [true, false] : [false, true];
      const out = await transfer(seed, Math.floor(r() * 300_000), Math.floor(r() * 300_000), faultsFor(seed), { offload });
      expect(out.problems, out.problems.join('\n')).toEqual([]);
      gsoOut += out.stats['tcp.out.gso'] ?? 0;
      expect(out.stats['link.offload.gso.in'] ?? 0, `seed ${seed}`).toBe(0); // nothing arrives whole
    }
    expect(gsoOut).toBeGreaterThan(50);
  });

  it('emulated offload, 3 seeds, 4 MB each way over faulty links', async () => {
    for (let seed = 720_001; seed <= 720_000 + 3 * SOAK; seed++) {
      const { aToB, bToA } = faultsFor(seed);
      const faults = { aToB: { ...aToB, corrupt: 0 }, bToA: { ...bToA, corrupt: 0 } };
      const out = await transfer(seed, 4 << 20, 4 << 20, faults, { offload: true });
      expect(out.problems, out.problems.join('\n')).toEqual([]);
      expect(out.stats['tcp.out.gso'], `seed ${seed}`).toBeGreaterThan(0);
    }
  });

  it('the smallest MTUs IPv4 allows (68 bytes: 28-byte segments)', async () => {
    for (const mtu of [68, 80, 100, 104]) {
      const out = await transfer(600_000 + mtu, 5000, 5000, faultsFor(600_000 + mtu), { mtu });
      expect(out.problems, out.problems.join('\n')).toEqual([]);
    }
  });

  it('20 seeds, 1 MB each way', async () => {
    for (let seed = 200_001; seed <= 200_000 + 20 * SOAK; seed++) {
      const out = await transfer(seed, 1 << 20, 1 << 20);
      expect(out.problems, out.problems.join('\n')).toEqual([]);
      expect(out.maxTimers, `seed ${seed}`).toBeLessThan(64);
    }
  });

  it('a 10 Mbit/s bottleneck with a 20-packet drop-tail queue, 1 MB each way', async () => {
    for (let seed = 300_001; seed <= 300_000 + 5 * SOAK; seed++) {
      const link: Faults = { delayMs: 10, rateBytesPerMs: 1250, queueLimit: 20, reorder: 0.01 };
      const out = await transfer(seed, 1 << 20, 1 << 20, { aToB: link, bToA: link });
      expect(out.problems, out.problems.join('\n')).toEqual([]);
    }
  });

  it('50 connections at once over one faulty link, each both ways', async () => {
    for (let seed = 500_001; seed <= 500_000 + 2 * SOAK; seed++) {
      const { aToB, bToA } = faultsFor(seed);
      const sim = createSim({ seed, aToB, bToA, tcp: { msl: MSL } });
      const { clock, a, b } = sim;
      const r = seededRandom(seed);
      const n = 50;
      const up = Array.from({ length: n }, (_, i) => randomBytes(Math.floor(r() * 50_000), seed * 1000 + i));
      const down = Array.from({ length: n }, (_, i) => randomBytes(Math.floor(r() * 50_000), seed * 1000 + 500 + i));
      const gotUp = new Map<number, Buffer[]>();
      const gotDown: Buffer[][] = up.map(() => []);
      let closed = 0;
      b.createServer({ allowHalfOpen: true }, (s) => {
        // The client's first two bytes say which connection it is.
        let id = -1;
        const parts: Buffer[] = [];
        s.on('data', (d: Buffer) => {
          parts.push(d);
          if (id < 0 && Buffer.concat(parts).length >= 2) {
            id = Buffer.concat(parts).readUInt16BE(0);
            gotUp.set(id, parts);
            pump(s, down[id]!, 4000);
          }
        });
        s.on('close', () => closed++);
      }).listen(80);
      await clock.sleep(1);
      for (let i = 0; i < n; i++) {
        const c = a.connect({ host: B_ADDR, port: 80, allowHalfOpen: true });
        c.on('data', (d: Buffer) => gotDown[i]!.push(d));
        c.on('close', () => closed++);
        const id = Buffer.alloc(2);
        id.writeUInt16BE(i);
        c.on('connect', () => pump(c, Buffer.concat([id, up[i]!]), 3000));
      }
      let maxTimers = 0;
      const finished = await clock.run(() => {
        maxTimers = Math.max(maxTimers, a.stats()['tcp.timers']!, b.stats()['tcp.timers']!);
        return closed < 2 * n;
      }, 3_600_000);
      expect(finished, `seed ${seed}: ${closed} of ${2 * n} sockets closed`).toBe(true);
      for (let i = 0; i < n; i++) {
        expect(Buffer.concat(gotUp.get(i) ?? []).subarray(2).equals(up[i]!), `seed ${seed} connection ${i} up`).toBe(true);
        expect(Buffer.concat(gotDown[i]!).equals(down[i]!), `seed ${seed} connection ${i} down`).toBe(true);
      }
      await clock.run(() => a.tcp.connectionCount + b.tcp.connectionCount > 0, 1_800_000);
      expect(a.connections(), `seed ${seed}`).toEqual([]);
      expect(b.connections(), `seed ${seed}`).toEqual([]);
      expect(a.tcp.nextDeadline()).toBe(Infinity);
      expect(b.tcp.nextDeadline()).toBe(Infinity);
      // The timer heap holds about one entry per connection; stale ones are rebuilt away.
      expect(maxTimers, `seed ${seed}`).toBeLessThan(4 * n + 1024);
    }
  });

  it('heavy weather: 20% loss and 30% reordering each way, 50 kB each way', async () => {
    // Progress is slow here: when every flight loses a segment, every ACK covers a retransmission,
    // Karn's rule allows no new RTT sample and the RTO stays backed off near its 120 s ceiling
    // (RFC 6298 §5.5). It must still finish intact: allow 4 virtual hours.
    const heavy: Faults = { loss: 0.2, reorder: 0.3, duplicate: 0.1, corrupt: 0.05, delayMs: 5, jitterMs: 20 };
    for (let seed = 400_001; seed <= 400_000 + 5 * SOAK; seed++) {
      const out = await transfer(seed, 50_000, 50_000, { aToB: heavy, bToA: heavy }, {}, 4 * 3_600_000);
      expect(out.problems, out.problems.join('\n')).toEqual([]);
    }
  });
});
