import { describe, expect, it } from 'vitest';
import { INFINITE_SSTHRESH, NewReno, initialWindow } from '../../src/tcp/congestion.js';

const MSS = 1000;

describe('NewReno (RFC 5681 + RFC 6582)', () => {
  it('[cc.initial-window] starts with IW = min(10*MSS, max(2*MSS, 14600)) and ssthresh "arbitrarily high" (RFC 6928 §2, RFC 5681 §3.1)', () => {
    expect(initialWindow(1460)).toBe(14600);
    expect(initialWindow(1000)).toBe(10_000);
    expect(initialWindow(536)).toBe(5360);
    expect(initialWindow(8960)).toBe(17_920); // jumbo MSS: 2*MSS
    const cc = new NewReno(1460);
    expect(cc.cwnd).toBe(14_600);
    expect(cc.ssthresh).toBe(INFINITE_SSTHRESH);
    // The MSS learned in the handshake replaces the provisional one while cwnd is still initial.
    cc.setMss(MSS);
    expect(cc.cwnd).toBe(10 * MSS);
  });

  it('[cc.syn-loss-iw] a retransmitted SYN leaves an initial window of one segment, ssthresh untouched (RFC 5681 §3.1)', () => {
    const cc = new NewReno(MSS);
    cc.onSynLoss();
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(INFINITE_SSTHRESH);
    cc.onAck(MSS, 1000, MSS);
    expect(cc.cwnd).toBe(2 * MSS); // still slow start
  });

  it('[cc.slow-start] slow start: cwnd grows by the bytes acked, doubling per round trip, also with stretch ACKs (RFC 5681 §3.1, RFC 3465)', () => {
    const cc = new NewReno(MSS);
    // A round trip with one ACK per two segments...
    let ack = 0;
    for (let i = 0; i < 5; i++) cc.onAck(2 * MSS, (ack += 2 * MSS), 10 * MSS);
    expect(cc.cwnd).toBe(20 * MSS);
    // ...and one with a single stretch ACK for the whole window: the same growth.
    cc.onAck(20 * MSS, (ack += 20 * MSS), 20 * MSS);
    expect(cc.cwnd).toBe(40 * MSS);
  });

  it('[cc.congestion-avoidance] congestion avoidance: one MSS per cwnd of bytes acked; slow start stops at ssthresh (RFC 5681 §3.1)', () => {
    const cc = new NewReno(MSS, { initialSsthresh: 15 * MSS });
    let ack = 0;
    // 10 -> 15 MSS in slow start; the 5 MSS left of this 10-MSS ACK count toward avoidance.
    cc.onAck(10 * MSS, (ack += 10 * MSS), 10 * MSS);
    expect(cc.cwnd).toBe(15 * MSS);
    // 10 more MSS acked (15 in all since cwnd reached 15 MSS): +1 MSS.
    for (let i = 0; i < 10; i++) cc.onAck(MSS, (ack += MSS), 15 * MSS);
    expect(cc.cwnd).toBe(16 * MSS);
    // Exactly linear: k windows' worth of ACKs, in any ACK size, give k MSS.
    const trace: number[] = [];
    for (let rtt = 0; rtt < 20; rtt++) {
      const w = cc.cwnd;
      for (let sent = 0; sent < w; sent += 2 * MSS) cc.onAck(Math.min(2 * MSS, w - sent), (ack += 2 * MSS), w);
      trace.push(cc.cwnd / MSS);
    }
    expect(trace).toEqual(Array.from({ length: 20 }, (_, i) => 17 + i));
    // A huge stretch ACK (three windows) grows it by about three MSS, not one.
    const before = cc.cwnd;
    cc.onAck(3 * before + 3 * MSS, (ack += 3 * before), before);
    expect(cc.cwnd).toBe(before + 3 * MSS);
  });

  it('[cc.fast-retransmit] third duplicate ACK: ssthresh = max(FlightSize/2, 2*MSS), cwnd = ssthresh + 3*MSS, inflate per further dup (RFC 5681 §3.2)', () => {
    const cc = new NewReno(MSS);
    const flight = 20 * MSS;
    expect(cc.onDupAck(1, 5000, flight, 25_000)).toBe('none');
    expect(cc.onDupAck(2, 5000, flight, 25_000)).toBe('none');
    expect(cc.cwnd).toBe(10 * MSS); // the first two change nothing (no limited transmit)
    expect(cc.onDupAck(3, 5000, flight, 25_000)).toBe('retransmit');
    expect(cc.ssthresh).toBe(10 * MSS);
    expect(cc.cwnd).toBe(13 * MSS);
    expect(cc.inRecovery).toBe(true);
    expect(cc.onDupAck(4, 5000, flight, 25_000)).toBe('none');
    expect(cc.onDupAck(5, 5000, flight, 25_000)).toBe('none');
    expect(cc.cwnd).toBe(15 * MSS);
    // A small flight: ssthresh never below 2*MSS.
    const small = new NewReno(MSS);
    for (let i = 1; i <= 3; i++) small.onDupAck(i, 0, 3 * MSS, 3 * MSS);
    expect(small.ssthresh).toBe(2 * MSS);
  });

  it('[cc.partial-ack] partial ACK: deflate by the amount acked, add one MSS back, retransmit the next hole; full ACK exits (RFC 6582 §3.2)', () => {
    const cc = new NewReno(MSS);
    const sndMax = 25_000;
    for (let i = 1; i <= 3; i++) cc.onDupAck(i, 5000, 20 * MSS, sndMax);
    cc.onDupAck(4, 5000, 20 * MSS, sndMax); // cwnd 14 MSS
    expect(cc.cwnd).toBe(14 * MSS);
    // Partial ACK of 3 MSS (a second segment was lost too): 14 - 3 + 1 = 12 MSS.
    expect(cc.onAck(3 * MSS, 8000, 20 * MSS)).toBe('partial');
    expect(cc.cwnd).toBe(12 * MSS);
    expect(cc.inRecovery).toBe(true);
    // A partial ACK of less than one MSS adds nothing back.
    expect(cc.onAck(500, 8500, 17 * MSS)).toBe('partial');
    expect(cc.cwnd).toBe(11.5 * MSS);
    // Full ACK (ack >= recover): cwnd = min(ssthresh, max(FlightSize, MSS) + MSS).
    expect(cc.onAck(16_500, sndMax, 16_500 + 2 * MSS)).toBe('exit');
    expect(cc.inRecovery).toBe(false);
    expect(cc.cwnd).toBe(3 * MSS); // 2 MSS still outstanding + 1
    const cc2 = new NewReno(MSS);
    for (let i = 1; i <= 3; i++) cc2.onDupAck(i, 5000, 20 * MSS, sndMax);
    expect(cc2.onAck(20 * MSS, sndMax, 20 * MSS + 30 * MSS)).toBe('exit');
    expect(cc2.cwnd).toBe(cc2.ssthresh); // capped at ssthresh
  });

  it('[cc.recover-guard] no second halving for duplicates below "recover"; a loss at exactly "recover" starts a new recovery (RFC 6582 §3.2 step 2)', () => {
    const cc = new NewReno(MSS);
    for (let i = 1; i <= 3; i++) cc.onDupAck(i, 5000, 40 * MSS, 45_000);
    expect(cc.onAck(40 * MSS, 45_000, 40 * MSS)).toBe('exit');
    const ssthresh = cc.ssthresh;
    // Duplicates for an ACK below recover (e.g. a stale one) do not start a new recovery.
    const old = new NewReno(MSS);
    for (let i = 1; i <= 3; i++) old.onDupAck(i, 5000, 40 * MSS, 45_000);
    old.onAck(10 * MSS, 15_000, 40 * MSS);
    // ...after an RTO, duplicates for data sent before the timeout don't either.
    old.onRto(30 * MSS, 45_000, false);
    for (let i = 1; i <= 3; i++) expect(old.onDupAck(i, 20_000, 25 * MSS, 45_000)).toBe('none');
    expect(old.cwnd).toBe(MSS);
    // The next loss right after the recovered window (dup ACKs with ack == recover) is recovered by fast retransmit.
    for (let i = 1; i <= 2; i++) expect(cc.onDupAck(i, 45_000, 10 * MSS, 55_000)).toBe('none');
    expect(cc.onDupAck(3, 45_000, 10 * MSS, 55_000)).toBe('retransmit');
    expect(cc.ssthresh).toBe(Math.max(5 * MSS, 2 * MSS));
    expect(cc.ssthresh).toBeLessThan(ssthresh);
  });

  it('[cc.rto-collapse] RTO: cwnd = 1 MSS, ssthresh halves, held on a repeated timeout; slow start back to ssthresh (RFC 5681 §3.1)', () => {
    const cc = new NewReno(MSS);
    cc.onAck(30 * MSS, 30 * MSS, 10 * MSS); // cwnd 40 MSS
    cc.onRto(40 * MSS, 40 * MSS, false);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(20 * MSS);
    // The same segment times out again: ssthresh is held, even though FlightSize says otherwise.
    cc.onRto(40 * MSS, 40 * MSS, true);
    expect(cc.ssthresh).toBe(20 * MSS);
    expect(cc.cwnd).toBe(MSS);
    // A timeout during fast recovery ends it.
    const r = new NewReno(MSS);
    for (let i = 1; i <= 3; i++) r.onDupAck(i, 0, 20 * MSS, 20 * MSS);
    r.onRto(20 * MSS, 20 * MSS, false);
    expect(r.inRecovery).toBe(false);
    expect(r.cwnd).toBe(MSS);
    // Slow start again: 1, 2, 4, 8, 16, then capped at ssthresh 20 and linear.
    let ack = 40 * MSS;
    const trace: number[] = [];
    for (let rtt = 0; rtt < 7; rtt++) {
      const w = cc.cwnd;
      cc.onAck(w, (ack += w), w);
      trace.push(cc.cwnd / MSS);
    }
    expect(trace).toEqual([2, 4, 8, 16, 20, 21, 22]);
  });

  it('[cc.rto-flight-floor] ssthresh never drops below 2*MSS, whatever the flight (RFC 5681 eq. 4)', () => {
    const cc = new NewReno(MSS);
    cc.onRto(MSS, MSS, false);
    expect(cc.ssthresh).toBe(2 * MSS);
    cc.onRto(0, MSS, false);
    expect(cc.ssthresh).toBe(2 * MSS);
  });
});
