/**
 * CUBIC's epoch bookkeeping at its edges (RFC 9438): where a congestion-avoidance epoch starts
 * without a loss point above it, fast convergence exactly at W_max, and growth that does not
 * depend on how finely the peer's ACKs slice the window.
 */
import { describe, expect, it } from 'vitest';
import { CUBIC_BETA, Cubic } from '../../src/tcp/congestion/cubic.js';

const MSS = 1000;

describe('CUBIC epochs (RFC 9438)', () => {
  it('[cubic.epoch-no-loss] slow start ending at ssthresh with no loss yet: the epoch has W_max = cwnd and K = 0, so cwnd probes upwards at once (§4.2, §4.8)', () => {
    const cc = new Cubic(MSS, { initialSsthresh: 20 * MSS });
    cc.onAck(10 * MSS, 10 * MSS, 10 * MSS, 0, 100); // slow start to ssthresh exactly
    expect([cc.cwnd, cc.wMax, cc.epochStart]).toEqual([20 * MSS, 0, undefined]);
    cc.onAck(MSS, 11 * MSS, 20 * MSS, 1000, 100); // first congestion-avoidance ACK
    expect([cc.wMax, cc.k, cc.epochStart]).toEqual([20, 0, 1000]);
    // Ten seconds on, the window is far above where it started (W_cubic(10 s) = 0.4 * 10^3 + 20).
    let ack = 11 * MSS;
    for (let t = 1100; t <= 11_000; t += 100) cc.onAck(cc.cwnd, (ack += cc.cwnd), cc.cwnd, t, 100);
    expect(cc.cwnd / MSS).toBeGreaterThan(300);
  });

  it('[cubic.fast-convergence-edge] a loss exactly at W_max is no sign of a competing flow: W_max stays that window (fast convergence only below it, §4.7)', () => {
    const cc = new Cubic(MSS);
    cc.cwnd = 100 * MSS;
    cc.enterRecovery(0, 100 * MSS, 100 * MSS, 0);
    cc.onAck(MSS, 100 * MSS, 70 * MSS, 1, 100); // out of recovery
    cc.cwnd = 100 * MSS; // back at the old W_max
    expect(cc.enterRecovery(100 * MSS, 100 * MSS, 200 * MSS, 2)).toBe(true);
    expect(cc.wMax).toBe(100);
    expect(cc.ssthresh).toBe(100 * MSS * CUBIC_BETA);
  });

  it('[cubic.ack-granularity] congestion avoidance grows the same whether a window is acknowledged in one ACK per segment or in ten-byte pieces (fractions of a byte add up)', () => {
    const grow = (piece: number): number => {
      const cc = new Cubic(MSS);
      cc.cwnd = 50 * MSS;
      cc.enterRecovery(0, 50 * MSS, 50 * MSS, 0);
      cc.onAck(MSS, 50 * MSS, 35 * MSS, 0, 100);
      let ack = 50 * MSS;
      // Two RTTs near the plateau, time advancing with the bytes acknowledged.
      const total = 2 * cc.cwnd;
      for (let done = 0; done < total; done += piece) cc.onAck(piece, (ack += piece), cc.cwnd, 2000 + (done / total) * 200, 100);
      return cc.cwnd;
    };
    const coarse = grow(MSS);
    const fine = grow(10);
    expect(coarse).toBeGreaterThan(35 * MSS);
    expect(Math.abs(fine - coarse)).toBeLessThanOrEqual(2);
  });
});
