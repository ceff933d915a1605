/**
 * The congestion window over (virtual) time, sampled from `stack.connections()` at every
 * instant something happens in the simulation.
 */
import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { Sim } from '../helpers/sim.js';
import { NewReno, newReno } from '../../src/tcp/congestion.js';
import type { TcpConfig } from '../../src/tcp/config.js';
import type { FaultyOptions } from '../../src/link/faulty.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { TcpState } from '../../src/tcp/state.js';

const MSS = 1460;

interface Sample {
  t: number;
  cwnd: number;
  ssthresh: number;
  /** In fast recovery (cwnd inflated by duplicate ACKs). */
  recovery: boolean;
}

interface Run {
  sim: Sim;
  ok: boolean;
  intact: boolean;
  /** Virtual ms from connect() to the last byte at the receiver. */
  ms: number;
  /** The sender's cwnd and ssthresh each time either changed (t relative to connect()). */
  trace: Sample[];
}

/** These traces show NewReno (RFC 5681) as it was before SACK, timestamps and CUBIC: the sender is
 *  configured for it (CUBIC's curve is in test/unit/cubic.test.ts, SACK recovery in congestion-loss). */
const RENO: Partial<TcpConfig> = { congestionControl: newReno, sack: false, timestamps: false };

/** A sends `size` bytes to B over `aToB` (ACKs come back over a clean link with the same delay). */
async function bulk(size: number, aToB: Omit<FaultyOptions, 'seed'>, tcpA: Partial<TcpConfig> = {}, seed = 3): Promise<Run> {
  // Buffers at their full size from the start: the trace is of cwnd alone, not of buffer autotuning.
  const full = { initialRcvBuf: 1 << 20, initialSndBuf: 1 << 20 };
  const sim = createSim({ seed, aToB, bToA: { delayMs: aToB.delayMs }, tcp: full, tcpA: { ...RENO, ...tcpA } });
  const { clock, a, b } = sim;
  const data = randomBytes(size, seed);
  const got: Buffer[] = [];
  let received = 0;
  b.createServer((s: TcpSocket) =>
    s.on('data', (d: Buffer) => {
      got.push(d);
      received += d.length;
    }),
  ).listen(80);
  await clock.sleep(1);
  const start = clock.now();
  const c = a.connect({ host: B_ADDR, port: 80 });
  c.on('connect', () => c.end(data));
  const trace: Sample[] = [];
  const ok = await clock.run(() => {
    const conn = a.tcp.connectionList()[0];
    const last = trace[trace.length - 1];
    if (conn && conn.state === TcpState.ESTABLISHED && (!last || last.cwnd !== conn.snd.cc.cwnd || last.ssthresh !== conn.snd.cc.ssthresh)) {
      trace.push({ t: clock.now() - start, cwnd: conn.snd.cc.cwnd, ssthresh: conn.snd.cc.ssthresh, recovery: conn.snd.cc.inRecovery });
    }
    return received < size;
  }, 600_000);
  return { sim, ok, intact: Buffer.concat(got).equals(data), ms: clock.now() - start, trace };
}

describe('cwnd trace (RFC 5681 §3.1)', () => {
  it('[cc.trace-ss-then-ca] loss-free: slow start doubles cwnd every RTT up to ssthresh, then it grows by one MSS per RTT', async () => {
    // A finite initial ssthresh (64 segments) so congestion avoidance starts without a loss. No
    // rate limit: each window arrives in one batch and is acknowledged by one ACK, so cwnd moves
    // once per round trip (20 ms) and the trace reads like a textbook figure.
    const ssthresh = 64 * MSS;
    const r = await bulk(4_000_000, { delayMs: 10 }, { congestionControl: (mss) => new NewReno(mss, { initialSsthresh: ssthresh }) });
    expect(r.ok).toBe(true);
    expect(r.intact).toBe(true);
    expect(r.sim.a.stats()['tcp.retransmit']).toBeUndefined();
    const segs = r.trace.map((s) => s.cwnd / MSS);
    // Slow start: 10 (RFC 6928), doubling each round trip, capped at ssthresh.
    expect(segs.slice(0, 4)).toEqual([10, 20, 40, 64]);
    // Congestion avoidance: +1 MSS per step, and one step per round trip.
    const ca = r.trace.slice(3);
    expect(ca.length).toBeGreaterThan(20);
    for (let i = 1; i < ca.length; i++) {
      expect(ca[i]!.cwnd - ca[i - 1]!.cwnd).toBe(MSS);
      expect(ca[i]!.t - ca[i - 1]!.t).toBe(20);
    }
    expect(r.trace.every((s) => s.ssthresh === ssthresh)).toBe(true);
  });

  it('[cc.trace-loss-sawtooth] a bottleneck with a small queue: slow start overshoots, then cwnd halves on each loss and climbs linearly (sawtooth)', async () => {
    // 10 Mbit/s, 10 ms each way: the path holds 25 000 bytes (~17 segments) plus 20 queued packets.
    const r = await bulk(6_000_000, { delayMs: 10, rateBytesPerMs: 1250, queueLimit: 20 });
    expect(r.ok).toBe(true);
    expect(r.intact).toBe(true);
    const link = r.sim.aOut!.stats;
    const stats = r.sim.a.stats();
    // Overrun at first (slow start overshoots the queue)...
    expect(link.queueDrops).toBeGreaterThan(0);
    // ...but not forever: losses make cwnd back off. Count the reductions of cwnd (fast recovery
    // and RTO), and check the window never settles above what the path can hold.
    let reductions = 0;
    for (let i = 1; i < r.trace.length; i++) if (r.trace[i]!.cwnd < r.trace[i - 1]!.cwnd) reductions++;
    expect(reductions).toBeGreaterThanOrEqual(3);
    expect(stats['tcp.fast-retransmit'] ?? 0).toBeGreaterThanOrEqual(3);
    // Each fast recovery halves: the new ssthresh is at most half the window before the loss
    // (FlightSize / 2, RFC 5681 eq. 4); outside recovery and above ssthresh, growth is at most one
    // MSS per step (congestion avoidance).
    let entries = 0;
    for (let i = 1; i < r.trace.length; i++) {
      const prev = r.trace[i - 1]!;
      const cur = r.trace[i]!;
      if (cur.recovery && !prev.recovery) {
        entries++;
        expect(cur.ssthresh).toBeLessThanOrEqual(prev.cwnd / 2 + MSS);
        expect(cur.ssthresh).toBeGreaterThanOrEqual(2 * MSS);
      } else if (!cur.recovery && !prev.recovery && prev.cwnd >= prev.ssthresh) {
        expect(cur.cwnd - prev.cwnd).toBeLessThanOrEqual(MSS);
      }
    }
    expect(entries).toBeGreaterThanOrEqual(3);
    const pathPackets = 17 + 20;
    const secondHalf = r.trace.filter((s) => s.t > r.ms / 2 && !s.recovery);
    expect(secondHalf.length).toBeGreaterThan(0);
    expect(Math.max(...secondHalf.map((s) => s.cwnd))).toBeLessThan(1.5 * pathPackets * MSS);
    // Few packets are dropped, and the link stays busy: goodput >= 85% of 10 Mbit/s.
    expect(link.queueDrops / link.sent).toBeLessThan(0.02);
    const mbps = (6_000_000 * 8) / (r.ms * 1000);
    expect(mbps).toBeGreaterThan(8.5);
  });

  it('[cc.trace-rto-collapse] a timeout (a 2 s blackout) collapses cwnd to one segment and halves ssthresh; slow start climbs back to it', async () => {
    const sim = createSim({ seed: 5, aToB: { delayMs: 10 }, bToA: { delayMs: 10 }, tcpA: RENO });
    const { clock, a, b } = sim;
    const size = 3_000_000;
    let received = 0;
    b.createServer((s: TcpSocket) => s.on('data', (d: Buffer) => (received += d.length))).listen(80);
    await clock.sleep(1);
    const c = a.connect({ host: B_ADDR, port: 80 });
    c.on('connect', () => c.end(randomBytes(size, 1)));
    // Let the window open (loss-free slow start), then black out the path for 2 s.
    await clock.run(() => received < 300_000, 10_000);
    expect(a.connections()[0]!.cwnd).toBeGreaterThan(20 * MSS);
    sim.aOut!.setOptions({ loss: 1 });
    // Watch every instant of the blackout: the flight just before the first timeout, and the
    // window after each one.
    let flightBefore = 0;
    const afterEach: Array<{ cwnd: number; ssthresh: number }> = [];
    await clock.run(() => {
      const conn = a.connections()[0]!;
      const rtos = a.stats()['tcp.rto'] ?? 0;
      if (rtos === 0) flightBefore = conn.sndNxt - conn.sndUna; // SND.NXT = SND.MAX until the first timeout
      else if (afterEach.length < rtos) afterEach.push({ cwnd: conn.cwnd, ssthresh: conn.ssthresh });
      return true;
    }, 2000);
    // 200 ms, then 400, 800: three timeouts in 2 s (RFC 6298 §5.5 backoff).
    expect(afterEach.length).toBe(3);
    const during = afterEach[0]!;
    // ssthresh = FlightSize / 2 at the first timeout (RFC 5681 eq. 4), held on the repeated ones.
    expect(during.ssthresh).toBe(Math.floor(flightBefore / 2));
    expect(afterEach).toEqual(afterEach.map(() => ({ cwnd: MSS, ssthresh: during.ssthresh })));
    sim.aOut!.setOptions({ loss: 0 });
    const trace: number[] = [];
    const ok = await clock.run(() => {
      const conn = a.connections()[0];
      if (conn && trace[trace.length - 1] !== conn.cwnd) trace.push(conn.cwnd);
      return received < size;
    }, 60_000);
    expect(ok).toBe(true);
    // Slow start from one segment up to ssthresh, then linear.
    const toSsthresh = trace.slice(0, trace.findIndex((w) => w >= during.ssthresh) + 1);
    expect(toSsthresh[0]).toBe(MSS);
    for (let i = 1; i < toSsthresh.length - 1; i++) expect(toSsthresh[i]).toBeGreaterThan(toSsthresh[i - 1]!);
    expect(toSsthresh[toSsthresh.length - 1]).toBe(during.ssthresh);
  });
});
