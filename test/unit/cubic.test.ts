import { describe, expect, it } from 'vitest';
import { CUBIC_ALPHA, CUBIC_BETA, CUBIC_C, Cubic, cubicK, wCubic } from '../../src/tcp/congestion/cubic.js';
import { INFINITE_SSTHRESH } from '../../src/tcp/congestion.js';

const MSS = 1000;

/** Drive `cc` in congestion avoidance: one ACK per segment, a window per RTT, for `rtts` round trips.
 *  Returns cwnd (segments) at the end of each round trip. */
function run(cc: Cubic, startMs: number, rttMs: number, rtts: number, ack0 = 1_000_000): number[] {
  const out: number[] = [];
  let ack = ack0;
  let now = startMs;
  for (let r = 0; r < rtts; r++) {
    const w = Math.floor(cc.cwnd / MSS);
    for (let i = 0; i < w; i++) cc.onAck(MSS, (ack += MSS), cc.cwnd, now + (i * rttMs) / w, rttMs);
    now += rttMs;
    out.push(cc.cwnd / MSS);
  }
  return out;
}

/** A CUBIC that has just reduced from a flight of `w` segments (a SACK recovery that ended at once). */
function afterLoss(w: number, opts = {}): Cubic {
  const cc = new Cubic(MSS, opts);
  cc.cwnd = w * MSS; // as if slow start had got there
  cc.enterRecovery(0, w * MSS, w * MSS, 0);
  cc.onAck(w * MSS, w * MSS, w * MSS, 0, 100);
  return cc;
}

describe('CUBIC (RFC 9438)', () => {
  it('[cubic.constants] constants and formulas: C = 0.4, β = 0.7, α = 3(1-β)/(1+β), K = cbrt((W_max - cwnd_epoch)/C), W(0) = cwnd_epoch, W(K) = W_max (RFC 9438 §4.1-§4.3, §5)', () => {
    expect(CUBIC_C).toBe(0.4);
    expect(CUBIC_BETA).toBe(0.7);
    expect(CUBIC_ALPHA).toBeCloseTo(0.9 / 1.7, 12);
    const k = cubicK(100, 70);
    expect(k).toBeCloseTo(Math.cbrt(75), 12); // 4.217 s
    expect(wCubic(0, k, 100)).toBeCloseTo(70, 9);
    expect(wCubic(k, k, 100)).toBeCloseTo(100, 9);
    expect(wCubic(k + 2, k, 100)).toBeCloseTo(100 + 0.4 * 8, 9);
    expect(cubicK(50, 60)).toBe(0); // already above W_max
    const cc = new Cubic(1460);
    expect(cc.name).toBe('cubic');
    expect(cc.cwnd).toBe(14_600); // RFC 6928 IW, as NewReno
    expect(cc.ssthresh).toBe(INFINITE_SSTHRESH);
  });

  it('[cubic.decrease] a loss: ssthresh = cwnd = 0.7 * flight, W_max = flight; with fast convergence a loss below W_max sets W_max = flight * (1+β)/2 (RFC 9438 §4.6, §4.7)', () => {
    const cc = new Cubic(MSS);
    cc.cwnd = 100 * MSS;
    expect(cc.enterRecovery(0, 100 * MSS, 100 * MSS, 0)).toBe(true);
    expect(cc.ssthresh).toBe(70 * MSS);
    expect(cc.cwnd).toBe(70 * MSS);
    expect(cc.wMax).toBe(100);
    // One reduction per loss event: a second detection inside the same window changes nothing.
    expect(cc.enterRecovery(50 * MSS, 100 * MSS, 100 * MSS, 1)).toBe(false);
    expect(cc.cwnd).toBe(70 * MSS);
    expect(cc.onAck(MSS, 100 * MSS, 70 * MSS, 2, 100)).toBe('exit');
    expect(cc.cwnd).toBe(70 * MSS);
    // The next loss at 80 segments, below W_max = 100: fast convergence.
    cc.cwnd = 80 * MSS;
    expect(cc.enterRecovery(100 * MSS, 80 * MSS, 180 * MSS, 3)).toBe(true);
    expect(cc.wMax).toBeCloseTo(80 * 0.85, 9);
    expect(cc.ssthresh).toBe(56 * MSS);
    // Without fast convergence W_max is the flight.
    const plain = new Cubic(MSS, { fastConvergence: false });
    plain.cwnd = 100 * MSS;
    plain.enterRecovery(0, 100 * MSS, 100 * MSS, 0);
    plain.onAck(MSS, 100 * MSS, 70 * MSS, 0);
    plain.cwnd = 80 * MSS;
    plain.enterRecovery(100 * MSS, 80 * MSS, 180 * MSS, 3);
    expect(plain.wMax).toBe(80);
    // The reduction starts from min(FlightSize, cwnd): a flight larger than the window (data the
    // peer holds, SACKed during a long recovery) does not raise it.
    const big = new Cubic(MSS);
    big.cwnd = 50 * MSS;
    big.enterRecovery(0, 200 * MSS, 200 * MSS, 0);
    expect(big.ssthresh).toBe(35 * MSS);
    // NewReno-style fast retransmit (peer without SACK) reduces with β_cubic too.
    const reno = new Cubic(MSS);
    for (let i = 1; i <= 3; i++) reno.onDupAck(i, 0, 40 * MSS, 40 * MSS);
    expect(reno.ssthresh).toBe(28 * MSS);
    expect(reno.cwnd).toBe(31 * MSS);
    // ssthresh never below 2 MSS.
    const tiny = new Cubic(MSS);
    tiny.enterRecovery(0, 2 * MSS, 2 * MSS, 0);
    expect(tiny.ssthresh).toBe(2 * MSS);
  });

  it('[cubic.curve] the window follows W_cubic(t): concave up to W_max by t = K, flat around it, convex beyond (RFC 9438 §4.2, §4.4, §4.5)', () => {
    const rtt = 100;
    const cc = afterLoss(200);
    expect(cc.cwnd).toBe(140 * MSS);
    const k = cubicK(200, 140); // 5.31 s
    const trace = run(cc, 0, rtt, 100); // 10 s
    for (let r = 0; r < trace.length; r++) {
      const t = ((r + 1) * rtt) / 1000;
      // Each round trip ends within a segment of the curve one RTT ahead (the §4.4 target)...
      const expected = Math.max(wCubic(t, k, 200), 140);
      expect(Math.abs(trace[r]! - expected), `t=${t}`).toBeLessThan(0.02 * expected + 2);
    }
    // ...concave: the growth per RTT shrinks as W_max approaches; near K it is almost flat...
    const growth = (i: number) => trace[i + 1]! - trace[i]!;
    expect(growth(2)).toBeGreaterThan(growth(20));
    expect(growth(20)).toBeGreaterThan(growth(45));
    expect(Math.abs(trace[Math.round((k * 1000) / rtt) - 1]! - 200)).toBeLessThan(2);
    // ...and convex after K: growth speeds up again.
    expect(growth(90)).toBeGreaterThan(growth(60));
    expect(trace[99]!).toBeGreaterThan(200 + 0.4 * (10 - k) ** 3 - 6);
  });

  it('[cubic.reno-friendly] where W_cubic is slower than an AIMD flow (short RTT, small window) cwnd follows W_est: +α_cubic segments per RTT, +1 once past W_max (RFC 9438 §4.3)', () => {
    const cc = afterLoss(20);
    expect(cc.cwnd).toBe(14 * MSS);
    // RTT 1 ms: in 50 RTTs (50 ms) W_cubic has barely moved; W_est grows ~0.53 segments per RTT.
    const trace = run(cc, 0, 1, 10);
    const perRtt = (trace[9]! - 14) / 10;
    expect(perRtt).toBeGreaterThan(CUBIC_ALPHA * 0.9);
    expect(perRtt).toBeLessThan(CUBIC_ALPHA * 1.1);
    // Past W_max the AIMD estimate adds a full segment per RTT.
    const more = run(cc, 10, 1, 20);
    const later = run(cc, 30, 1, 10);
    expect(more[19]!).toBeGreaterThan(20);
    expect((later[9]! - more[19]!) / 10).toBeCloseTo(1, 1);
  });

  it('[cubic.rto] after a timeout: cwnd = 1 MSS, ssthresh = 0.7 * flight, slow start, then an epoch with K = 0 and W_max = cwnd (RFC 9438 §4.8)', () => {
    const cc = new Cubic(MSS);
    cc.onRto(50 * MSS, 50 * MSS, false);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(35 * MSS);
    let ack = 0;
    while (cc.cwnd < cc.ssthresh) cc.onAck(MSS, (ack += MSS), cc.cwnd, 0, 100);
    expect(cc.cwnd).toBe(35 * MSS);
    cc.onAck(MSS, (ack += MSS), 35 * MSS, 1000, 100); // first ACK in congestion avoidance
    expect(cc.k).toBe(0);
    expect(cc.wMax).toBe(35);
    // Convex from there: slow at first, faster later.
    const trace = run(cc, 1000, 100, 40);
    expect(trace[5]! - trace[0]!).toBeLessThan(trace[39]! - trace[34]!);
  });

  it('[cubic.idle-restart] restart after idle: cwnd = min(cwnd, IW), and the next epoch does not count the idle time (RFC 5681 §4.1, RFC 9438 §5.8)', () => {
    const cc = afterLoss(100);
    run(cc, 0, 100, 10);
    cc.onIdleRestart(60_000);
    expect(cc.cwnd).toBe(10 * MSS);
    expect(cc.epochStart).toBeUndefined();
    const wMax = cc.wMax;
    // Slow start back to ssthresh (untouched by the restart), then a fresh epoch from there.
    let ack = 5_000_000;
    while (cc.cwnd < cc.ssthresh) cc.onAck(MSS, (ack += MSS), cc.cwnd, 60_000, 100);
    expect(cc.epochStart).toBeUndefined();
    cc.onAck(MSS, (ack += MSS), cc.cwnd, 60_500, 100);
    expect(cc.epochStart).toBe(60_500);
    expect(cc.wMax).toBe(wMax); // the loss point is remembered
    expect(cc.k).toBeCloseTo(cubicK(wMax, cc.ssthresh / MSS), 1);
  });
});
