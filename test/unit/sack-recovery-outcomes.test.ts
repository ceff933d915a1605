/**
 * What SACK loss recovery (src/tcp/recovery.ts: scoreboard + RACK-TLP behind the sender's calls)
 * reports for one ACK, one reordering timeout, one retransmission timeout, and when it arms the
 * tail loss probe (RFC 6675 §5, RFC 8985 §6.2-§7.4). Times are ms; segments are MSS bytes from 0.
 */
import { describe, expect, it } from 'vitest';
import { PTO_MARGIN_MS, WC_DEL_ACK_MS } from '../../src/tcp/rack.js';
import { SackRecovery } from '../../src/tcp/recovery.js';

const MSS = 100;

/** n segments of MSS bytes from 0, segment i sent at time i. */
function sent(n: number, mss = MSS): SackRecovery {
  const rec = new SackRecovery(mss);
  for (let i = 0; i < n; i++) rec.onSent(i * mss, mss, i);
  return rec;
}

describe('SACK recovery outcomes (RFC 6675, RFC 8985)', () => {
  it('an ACK that leaves nothing lost and nothing undecided: no loss, no reordering timer, no probe repaired', () => {
    const rec = sent(4);
    const out = rec.onAck(200, undefined, 400, 41, false, 40);
    expect(out).toEqual({ reorderAt: Infinity, lossDetected: false, dsack: undefined, invalid: 0, newlySacked: 0, probeRepairedLoss: false });
    expect(rec.onReorderTimeout(60, false, 40)).toEqual({ lost: false, reorderAt: Infinity });
  });

  it('one SACKed segment above a hole: the hole is undecided until RTT + min_RTT/4 after its send; the deadline is absolute, and the timeout then finds the loss', () => {
    const rec = sent(4);
    const out = rec.onAck(0, [[100, 200]], 400, 41, false, 40); // segment 1: RTT 40
    expect(out.lossDetected).toBe(false);
    expect(out.newlySacked).toBe(MSS);
    expect(out.reorderAt).toBe(50); // segment 0: sent at 0, + RTT 40 + reo_wnd 10
    expect(rec.onReorderTimeout(49, false, 40)).toEqual({ lost: false, reorderAt: 50 });
    expect(rec.onReorderTimeout(50, false, 40)).toEqual({ lost: true, reorderAt: Infinity });
    expect(rec.nextRetransmit()?.start).toBe(0);
  });

  it('three SACKed segments above a hole: lost at once (RFC 6675 IsLost), whatever RACK\'s timer says', () => {
    const rec = sent(5);
    const out = rec.onAck(0, [[100, 400]], 500, 41, false, 40);
    expect(out.lossDetected).toBe(true);
    expect(rec.nextRetransmit()?.start).toBe(0);
    expect(rec.pipe).toBe(MSS); // segment 4 only
  });

  it('after reordering was seen RACK waits min_RTT/4, but DupThresh SACKed segments above a hole still make it lost at once (RFC 6675 IsLost)', () => {
    const rec = sent(8);
    rec.onAck(0, [[200, 300]], 800, 42, false, 40); // RTT 40
    rec.onAck(0, [[100, 300]], 800, 43, false, 40); // segment 1 below fack: reordering seen
    const out = rec.onAck(0, [[100, 300], [400, 600]], 800, 46, false, 40);
    // Segment 0 has four SACKed segments above it; RACK alone would wait until 0 + 41 + 10 = 51.
    expect(out.lossDetected).toBe(true);
    expect(rec.nextRetransmit()?.start).toBe(0);
    expect(out.reorderAt).toBe(3 + 41 + 10); // segment 3 (two SACKed above) waits for RACK
  });

  it('a D-SACK after reordering was seen doubles RACK\'s reordering window: the hole\'s deadline moves out (RFC 8985 §6.2 step 4)', () => {
    const deadline = (withDsack: boolean) => {
      const rec = sent(8);
      rec.onAck(0, [[200, 300]], 800, 42, false, 40); // RTT 40, fack 300
      rec.onAck(0, [[100, 300]], 800, 43, false, 40); // segment 1 below fack: reordering
      // The peer reports segment 2 twice (D-SACK inside the second block) and SACKs segment 4.
      const blocks: Array<[number, number]> = withDsack ? [[200, 300], [100, 300], [400, 500]] : [[100, 300], [400, 500]];
      return rec.onAck(0, blocks, 800, 44, false, 1000);
    };
    const plain = deadline(false);
    const dsack = deadline(true);
    expect(plain.dsack).toBeUndefined();
    expect(dsack.dsack).toEqual([200, 300]);
    // Segment 0 has three SACKed segments above it (lost by DupThresh); segment 3 (sent at 3) is
    // undecided: RACK.rtt 40 (segment 4), so its deadline is 3 + 40 + reo_wnd.
    expect(plain.reorderAt).toBe(3 + 40 + 10);
    expect(dsack.reorderAt).toBe(3 + 40 + 20);
  });

  it('after the MSS shrinks (a path-MTU drop), IsLost\'s byte rule counts in the new SMSS: 300 SACKed bytes above a hole are more than 2 · 100 (RFC 6675 §4)', () => {
    const rec = new SackRecovery(1000);
    rec.mss = 150;
    for (let i = 0; i < 4; i++) rec.onSent(i * 150, 150, i);
    // Two SACKed segments of 150 bytes: fewer than DupThresh segments, but 300 > (3 - 1) * 100.
    rec.mss = 100;
    expect(rec.onAck(0, [[150, 450]], 600, 41, false, 40).lossDetected).toBe(true);
    const same = new SackRecovery(1000);
    same.mss = 150;
    for (let i = 0; i < 4; i++) same.onSent(i * 150, 150, i);
    expect(same.onAck(0, [[150, 450]], 600, 41, false, 40).lossDetected).toBe(false);
  });

  it('a retransmitted probe acknowledged without a D-SACK reports a repaired loss once; a new-data probe does not (RFC 8985 §7.4)', () => {
    const rec = sent(3);
    rec.onAck(100, undefined, 300, 41, false, 40);
    rec.rack.onProbeSent(300, true);
    expect(rec.onAck(200, undefined, 300, 80, false, 40).probeRepairedLoss).toBe(false); // not yet
    expect(rec.onAck(300, undefined, 300, 90, false, 40).probeRepairedLoss).toBe(true);
    const fresh = sent(3);
    fresh.rack.onProbeSent(300, false);
    expect(fresh.onAck(300, undefined, 300, 90, false, 40).probeRepairedLoss).toBe(false);
  });

  it('a retransmission timeout ends the TLP episode: the probe deadline is armed again for what follows, and the ACK that ends the timeout\'s recovery is not a probe\'s repair (RFC 8985 §7.3-7.4)', () => {
    const rec = sent(3);
    rec.onAck(100, undefined, 300, 41, false, 40);
    rec.rack.onProbeSent(300, true);
    expect(rec.probeDeadline(100, 40, 200, MSS, false, 400)).toBe(Infinity); // a probe is outstanding
    expect(rec.onRto()).toBe(false);
    expect(rec.probeDeadline(100, 40, 200, MSS, false, 400)).toBe(100 + 80 + PTO_MARGIN_MS);
    expect(rec.onAck(300, undefined, 300, 500, false, 40).probeRepairedLoss).toBe(false);
  });

  it('a timeout with the segment at SND.UNA SACKed reports reneging and forgets the SACKs (RFC 2018 §8)', () => {
    const rec = sent(3);
    rec.onAck(0, [[0, 100]], 300, 41, false, 40); // the peer SACKs SND.UNA's own segment
    expect(rec.onRto()).toBe(true);
    expect(rec.nextRetransmit()?.start).toBe(0);
    expect(rec.sb.sackedBytes).toBe(0);
  });

  it('PTO is armed only outside recovery, with nothing SACKed, data in flight, no probe out and an RTO armed; one segment in flight (flight = SMSS) waits for a delayed ACK; never past the RTO (RFC 8985 §7.2)', () => {
    const rec = sent(3);
    expect(rec.probeDeadline(10, 40, 300, MSS, false, 1000)).toBe(10 + 80 + PTO_MARGIN_MS);
    expect(rec.probeDeadline(10, 40, MSS, MSS, false, 1000)).toBe(10 + 80 + WC_DEL_ACK_MS);
    expect(rec.probeDeadline(10, 40, MSS + 1, MSS, false, 1000)).toBe(10 + 80 + PTO_MARGIN_MS);
    expect(rec.probeDeadline(10, 40, MSS, MSS, false, 210)).toBe(210); // capped by the RTO
    expect(rec.probeDeadline(10, 40, 300, MSS, true, 1000)).toBe(Infinity); // in recovery, nothing SACKed
    expect(rec.probeDeadline(10, 40, 0, MSS, false, 1000)).toBe(Infinity);
    expect(rec.probeDeadline(10, 40, 300, MSS, false, Infinity)).toBe(Infinity);
    rec.onAck(0, [[100, 200]], 300, 41, false, 40);
    expect(rec.probeDeadline(50, 40, 300, MSS, false, 1000)).toBe(Infinity); // SACKed data: RACK's timer covers it
  });
});
