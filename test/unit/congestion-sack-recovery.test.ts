/**
 * The congestion controllers' side of SACK-based recovery and of the rarer events: entering
 * recovery once per loss event (RFC 6675 §5, RFC 6582 §3.2), a loss repaired by a tail loss probe
 * (RFC 8985 §7.4.2), restart after idle (RFC 5681 §4.1), an MSS change, and the names `--cc` takes.
 */
import { describe, expect, it } from 'vitest';
import { INFINITE_SSTHRESH, NewReno, initialWindow, newReno } from '../../src/tcp/congestion.js';
import { CONGESTION_CONTROLS } from '../../src/tcp/congestion/index.js';

const MSS = 1000;

describe('congestion control in SACK recovery (RFC 6675 §5)', () => {
  it('[cc.sack-recovery] entering: ssthresh = max(min(FlightSize, cwnd)/2, 2 SMSS), cwnd = ssthresh; no inflation or deflation until the recovery point is acknowledged', () => {
    const cc = new NewReno(MSS);
    // FlightSize (20 segments, SACKed data counted) above cwnd (10): the reduction starts from cwnd.
    expect(cc.enterRecovery(0, 20 * MSS, 20 * MSS, 0)).toBe(true);
    expect([cc.ssthresh, cc.cwnd, cc.inRecovery]).toEqual([5 * MSS, 5 * MSS, true]);
    // Partial ACKs: the sender's pipe decides what goes; cwnd stays.
    expect(cc.onAck(3 * MSS, 3 * MSS, 20 * MSS, 1)).toBe('none');
    expect(cc.onAck(MSS, 19 * MSS, 17 * MSS, 2)).toBe('none');
    expect(cc.cwnd).toBe(5 * MSS);
    expect(cc.onDupAck(4, 19 * MSS, 17 * MSS, 20 * MSS)).toBe('none');
    // The recovery point (SND.MAX when it began) acknowledged: out, cwnd = ssthresh.
    expect(cc.onAck(MSS, 20 * MSS, 16 * MSS, 3)).toBe('exit');
    expect([cc.cwnd, cc.inRecovery]).toEqual([5 * MSS, false]);
    // Then congestion avoidance: one SMSS per cwnd of bytes acknowledged.
    cc.onAck(5 * MSS, 25 * MSS, 5 * MSS, 4);
    expect(cc.cwnd).toBe(6 * MSS);
    // A small flight: the floor is 2 SMSS.
    const small = new NewReno(MSS);
    small.enterRecovery(0, 3 * MSS, 3 * MSS, 0);
    expect(small.ssthresh).toBe(2 * MSS);
  });

  it('[cc.sack-recovery-once] one reduction per loss event: not again during recovery, nor for a loss below the last recovery point or below SND.MAX at a timeout (RFC 6675 §5, RFC 6582 §3.2 step 2)', () => {
    const cc = new NewReno(MSS);
    expect(cc.enterRecovery(0, 10 * MSS, 10 * MSS, 0)).toBe(true);
    expect(cc.enterRecovery(2 * MSS, 10 * MSS, 12 * MSS, 1)).toBe(false);
    expect(cc.ssthresh).toBe(5 * MSS);
    cc.onAck(10 * MSS, 10 * MSS, 10 * MSS, 2); // exit
    expect(cc.enterRecovery(10 * MSS - 1, 5 * MSS, 15 * MSS, 3)).toBe(false); // below the old point: same event
    expect(cc.cwnd).toBe(5 * MSS);
    expect(cc.enterRecovery(10 * MSS, 6 * MSS, 16 * MSS, 4)).toBe(true); // at it: a new one
    expect(cc.ssthresh).toBe(2500); // half of min(FlightSize 6 SMSS, cwnd 5 SMSS)
    // A timeout ends recovery and sets the point to SND.MAX: losses of data sent before it do not reduce again.
    cc.onRto(6 * MSS, 30 * MSS, false);
    expect([cc.inRecovery, cc.cwnd]).toEqual([false, MSS]);
    expect(cc.enterRecovery(20 * MSS, 10 * MSS, 30 * MSS, 5)).toBe(false);
    expect(cc.enterRecovery(30 * MSS, 2 * MSS, 32 * MSS, 6)).toBe(true);
  });

  it('[cc.repaired-loss] a loss a tail loss probe repaired reduces ssthresh and cwnd once, as a recovery that ended at once; during a recovery it changes nothing (RFC 8985 §7.4.2)', () => {
    const cc = new NewReno(MSS);
    cc.onAck(10 * MSS, 10 * MSS, 10 * MSS); // slow start: 20 segments
    cc.onRepairedLoss(8 * MSS, 1);
    expect([cc.ssthresh, cc.cwnd, cc.inRecovery]).toEqual([4 * MSS, 4 * MSS, false]);
    // cwnd (one segment after a lost SYN) below the new ssthresh (the 2-SMSS floor): it stays.
    const low = new NewReno(MSS);
    low.onSynLoss();
    low.onRepairedLoss(10 * MSS, 1);
    expect([low.ssthresh, low.cwnd]).toEqual([2 * MSS, MSS]);
    const rec = new NewReno(MSS);
    rec.enterRecovery(0, 10 * MSS, 10 * MSS, 0);
    rec.onRepairedLoss(2 * MSS, 1);
    expect([rec.ssthresh, rec.cwnd]).toEqual([5 * MSS, 5 * MSS]);
  });
});

describe('NewReno at its boundaries (RFC 5681, RFC 6582)', () => {
  it('[cc.partial-ack-one-smss] a partial ACK of exactly one SMSS deflates by it and adds one SMSS back ("at least one SMSS", RFC 6582 §3.2 step 3); less adds nothing back', () => {
    const cc = new NewReno(MSS);
    for (let i = 1; i <= 3; i++) cc.onDupAck(i, 0, 10 * MSS, 10 * MSS);
    expect(cc.cwnd).toBe(8 * MSS); // ssthresh 5 + 3
    expect(cc.onAck(MSS, MSS, 10 * MSS, 1)).toBe('partial');
    expect(cc.cwnd).toBe(8 * MSS);
    expect(cc.onAck(MSS - 1, 2 * MSS - 1, 9 * MSS, 2)).toBe('partial');
    expect(cc.cwnd).toBe(7 * MSS + 1);
    // Outside recovery an ACK of new data asks for nothing.
    const open = new NewReno(MSS);
    expect(open.onAck(MSS, MSS, 10 * MSS, 0)).toBe('none');
  });

  it('[cc.rto-ssthresh-held] a repeated timeout keeps ssthresh even when FlightSize has changed since the first (RFC 5681 §3.1 "held constant")', () => {
    const cc = new NewReno(MSS);
    cc.onAck(30 * MSS, 30 * MSS, 10 * MSS);
    cc.onRto(40 * MSS, 40 * MSS, false);
    expect(cc.ssthresh).toBe(20 * MSS);
    cc.onRto(8 * MSS, 40 * MSS, true);
    expect([cc.ssthresh, cc.cwnd]).toEqual([20 * MSS, MSS]);
  });
});

describe('congestion control: idle restart, MSS changes, names', () => {
  it('[cc.idle-restart-newreno] restart after idle: cwnd = min(cwnd, IW), ssthresh kept (RFC 5681 §4.1)', () => {
    const cc = new NewReno(MSS);
    cc.onAck(30 * MSS, 30 * MSS, 10 * MSS);
    expect(cc.cwnd).toBe(40 * MSS);
    cc.onIdleRestart(10_000);
    expect([cc.cwnd, cc.ssthresh]).toEqual([initialWindow(MSS), INFINITE_SSTHRESH]);
    cc.onSynLoss(); // one segment: below IW, restart leaves it
    cc.onIdleRestart(20_000);
    expect(cc.cwnd).toBe(MSS);
  });

  it('[cc.mss-change] a new MSS rescales only an initial window; a grown one is kept (RFC 6928 §2)', () => {
    const cc = new NewReno(1460);
    cc.onAck(14_600, 14_600, 14_600);
    expect(cc.cwnd).toBe(29_200);
    cc.setMss(MSS);
    expect(cc.cwnd).toBe(29_200);
    cc.onRto(29_200, 29_200, false);
    expect(cc.cwnd).toBe(MSS); // one segment of the new size
  });

  it('[cc.names] `--cc cubic|newreno` picks the controller of that name; the factories start at the initial window', () => {
    expect(Object.keys(CONGESTION_CONTROLS).sort()).toEqual(['cubic', 'newreno']);
    for (const [name, make] of Object.entries(CONGESTION_CONTROLS)) {
      const cc = make(1460);
      expect(cc.name).toBe(name);
      expect([cc.cwnd, cc.ssthresh, cc.inRecovery]).toEqual([14_600, INFINITE_SSTHRESH, false]);
    }
    expect(newReno(MSS)).toBeInstanceOf(NewReno);
  });
});
