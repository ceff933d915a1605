/**
 * Backpressure end to end: a reader that stops reading closes the TCP window, the sender
 * probes it (RFC 9293 §3.8.6.1) instead of giving up, the writer's stream applies
 * backpressure, and when the reader resumes, a window update restarts the transfer at once —
 * the window must never stay stuck at zero (a bug tcpip.js had).
 */
import { describe, expect, it } from 'vitest';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { SimOptions } from '../helpers/sim.js';

const PAUSE_MS = 30_000;

async function pausedReader(opts: SimOptions, size: number) {
  const sim = createSim({ tcpB: { rcvBuf: 64 * 1024 }, ...opts });
  const { clock, a, b } = sim;
  const data = randomBytes(size, 4242);
  const got: Buffer[] = [];
  let server: TcpSocket | undefined;
  let resumedAt = Infinity;
  let firstAfterResume = Infinity;
  let received = 0;
  let ended = false;
  b.createServer({ highWaterMark: 16 * 1024 }, (s) => {
    server = s;
    s.on('data', (d: Buffer) => {
      got.push(d);
      received += d.length;
      if (clock.now() >= resumedAt && firstAfterResume === Infinity) firstAfterResume = clock.now();
    });
    s.on('end', () => (ended = true));
    s.pause(); // the application does not read ... until PAUSE_MS later
    clock.at(clock.now() + PAUSE_MS, () => {
      resumedAt = clock.now();
      s.resume();
    });
  }).listen(80);
  await clock.sleep(1);

  const c = a.connect({ host: B_ADDR, port: 80 });
  let writerBlocked = 0;
  c.on('connect', () => {
    let off = 0;
    const pump = (): void => {
      while (off < data.length) {
        const piece = data.subarray(off, off + 50_000);
        off += piece.length;
        if (!c.write(piece)) {
          writerBlocked++;
          c.once('drain', pump);
          return;
        }
      }
      c.end();
    };
    pump();
  });
  let sawZeroWindow = false;
  let receivedWhilePaused = 0;
  const ok = await clock.run(() => {
    if (a.connections().some((ci) => ci.sndWnd === 0)) sawZeroWindow = true;
    if (clock.now() < resumedAt) receivedWhilePaused = server?.bytesRead ?? 0; // what B's TCP accepted
    return !ended;
  }, 3_600_000);
  return { sim, ok, data, got, server, sawZeroWindow, writerBlocked, receivedWhilePaused, resumedAt, firstAfterResume };
}

describe('a paused reader', () => {
  it('closes the window; the sender probes it, blocks its writer, and resumes at once on the window update', async () => {
    const r = await pausedReader({ seed: 1 }, 2 * 1024 * 1024);
    const { sim } = r;
    expect(r.ok, sim.trace.join('\n')).toBe(true);
    expect(Buffer.concat(r.got).equals(r.data)).toBe(true);
    expect(r.sawZeroWindow).toBe(true);
    const probes = sim.a.stats()['tcp.persist.probe'] ?? 0;
    expect(probes).toBeGreaterThan(1); // PAUSE_MS is many probe intervals long
    // The RTO backs off during the probes, but the connection never gives up on a live peer.
    expect(sim.a.stats()['tcp.timeout'] ?? 0).toBe(0);
    // While paused, B's TCP took what fits in its receive buffer and the paused stream's buffer
    // (16 KiB high-water mark, overshot by at most one segment), no more.
    expect(r.receivedWhilePaused).toBeGreaterThanOrEqual(64 * 1024 + 16 * 1024);
    expect(r.receivedWhilePaused).toBeLessThanOrEqual(64 * 1024 + 16 * 1024 + 1460);
    // The writer's stream pushed back instead of buffering 2 MB.
    expect(r.writerBlocked).toBeGreaterThan(0);
    // Reading again sends a window update right away: the data flows within a round trip,
    // not at the sender's next (backed-off) probe.
    expect(r.firstAfterResume - r.resumedAt).toBeLessThan(10);
    await sim.clock.run(() => sim.a.tcp.connectionCount + sim.b.tcp.connectionCount > 0, 600_000);
    expect(sim.a.connections()).toEqual([]);
    expect(sim.b.connections()).toEqual([]);
  });

  it('the same over a lossy link: lost window updates and probes are recovered', async () => {
    const faults = { loss: 0.05, reorder: 0.02, delayMs: 10, jitterMs: 5 };
    for (const seed of [11, 12, 13]) {
      const r = await pausedReader({ seed, aToB: faults, bToA: faults }, 512 * 1024);
      expect(r.ok, `seed ${seed}\n${r.sim.trace.join('\n')}`).toBe(true);
      expect(Buffer.concat(r.got).equals(r.data), `seed ${seed}`).toBe(true);
      expect(r.sawZeroWindow, `seed ${seed}`).toBe(true);
      expect(r.sim.a.stats()['tcp.persist.probe'] ?? 0, `seed ${seed}`).toBeGreaterThan(0);
    }
  });
});
