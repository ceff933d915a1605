/**
 * Bulk transfers over a lossy link, on the virtual clock: the data must arrive intact whatever
 * the loss, and at low loss most losses must be repaired by fast retransmit (three duplicate
 * ACKs, RFC 5681 §3.2) rather than by the retransmission timer.
 *
 * The link: 100 Mbit/s (12 500 bytes/ms) from A to B, 10 ms one way (RTT 20 ms), random loss
 * in BOTH directions (data and ACKs). Everything follows from the seed.
 */
import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { TcpSocket } from '../../src/tcp/socket.js';

const SIZE = 10_000_000;
const DATA = randomBytes(SIZE, 42);

interface Result {
  ok: boolean;
  intact: boolean;
  /** Virtual ms from connect() to the receiver seeing the end of the stream. */
  ms: number;
  rto: number;
  fastRetransmit: number;
  retransmitted: number;
  segmentsOut: number;
  lost: number;
}

async function transfer(loss: number, seed: number): Promise<Result> {
  const sim = createSim({
    seed,
    aToB: { loss, delayMs: 10, rateBytesPerMs: 12_500 },
    bToA: { loss, delayMs: 10 },
  });
  const { clock, a, b } = sim;
  const got: Buffer[] = [];
  let ended = false;
  let closed = false;
  let error: Error | undefined;
  b.createServer((s: TcpSocket) => {
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => {
      ended = true;
      s.end();
    });
  }).listen(80);
  await clock.sleep(1);
  const start = clock.now();
  let end = start;
  const c = a.connect({ host: B_ADDR, port: 80 });
  c.on('connect', () => c.end(DATA));
  c.on('error', (e) => (error = e));
  c.on('close', () => (closed = true));
  c.resume();
  const ok = await clock.run(() => {
    if (ended && end === start) end = clock.now();
    return !(ended && closed) && !error;
  }, 3_600_000);
  const s = a.stats();
  return {
    ok: ok && !error,
    intact: Buffer.concat(got).equals(DATA),
    ms: end - start,
    rto: s['tcp.rto'] ?? 0,
    fastRetransmit: s['tcp.fast-retransmit'] ?? 0,
    retransmitted: s['tcp.retransmit'] ?? 0,
    segmentsOut: s['tcp.out'] ?? 0,
    lost: sim.aOut!.stats.lost,
  };
}

const results = new Map<number, Result>();
async function at(loss: number): Promise<Result> {
  let r = results.get(loss);
  if (!r) {
    r = await transfer(loss, 7);
    results.set(loss, r);
  }
  return r;
}

describe('10 MB over a lossy link (RFC 5681, RFC 6582, RFC 6298)', () => {
  it('[loss.intact-1pct] 1% loss: intact, and fast retransmit does most of the repair (three seeds)', async () => {
    for (const r of [await at(0.01), await transfer(0.01, 8), await transfer(0.01, 9)]) {
      expect(r.ok).toBe(true);
      expect(r.intact).toBe(true);
      expect(r.lost).toBeGreaterThan(30); // the link really lost packets
      expect(r.fastRetransmit).toBeGreaterThan(3 * r.rto);
    }
  });

  it('[loss.intact-5pct] 5% loss: intact', async () => {
    const r = await at(0.05);
    expect(r.ok).toBe(true);
    expect(r.intact).toBe(true);
    expect(r.fastRetransmit).toBeGreaterThan(0);
    expect(r.rto).toBeGreaterThan(0);
  });

  it('[loss.intact-10pct] 10% loss: intact', async () => {
    const r = await at(0.1);
    expect(r.ok).toBe(true);
    expect(r.intact).toBe(true);
    // Every lost data segment was sent again at least once, and not wildly more often.
    expect(r.retransmitted).toBeGreaterThanOrEqual(r.lost);
    expect(r.retransmitted).toBeLessThan(3 * r.lost);
  });

  it('[loss.table] throughput vs loss (a snapshot: a change in loss recovery shows up in review; update with vitest -u)', async () => {
    const rows = ['loss | virtual s | goodput Mbit/s | RTO | fast retransmit | retransmitted / sent'];
    for (const loss of [0.01, 0.05, 0.1]) {
      const r = await at(loss);
      const mbps = (SIZE * 8) / (r.ms * 1000);
      rows.push(
        `${(loss * 100).toFixed(0).padStart(3)}% | ${(r.ms / 1000).toFixed(1).padStart(9)} | ${mbps.toFixed(2).padStart(14)} | ` +
          `${String(r.rto).padStart(3)} | ${String(r.fastRetransmit).padStart(15)} | ${r.retransmitted} / ${r.segmentsOut}`,
      );
    }
    expect(rows.join('\n')).toMatchSnapshot();
  });
});
