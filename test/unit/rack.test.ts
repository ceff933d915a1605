import { describe, expect, it } from 'vitest';
import { PTO_MARGIN_MS, Rack, WC_DEL_ACK_MS, sentAfter } from '../../src/tcp/rack.js';
import { Scoreboard } from '../../src/tcp/sack.js';

const MSS = 100;

/** Segments 0..n-1 of MSS bytes from sequence 0, segment i sent at time i. */
function flight(n: number): Scoreboard {
  const sb = new Scoreboard(undefined, MSS);
  for (let i = 0; i < n; i++) sb.onSend(i * MSS, MSS, i);
  return sb;
}

/** Feed an ACK to the scoreboard and RACK as the connection will. */
function ack(sb: Scoreboard, rack: Rack, una: number, blocks: Array<[number, number]>, sndMax: number, now: number) {
  const res = sb.onAck(una, blocks, sndMax);
  for (const r of res.delivered) rack.onDelivered(r, now);
  return res;
}

describe('RACK-TLP (RFC 8985)', () => {
  it('[rack.time-loss] a segment sent more than RTT + reo_wnd before the last delivered one is lost; a younger one arms the reordering timer (RFC 8985 §6.2)', () => {
    const sb = flight(10);
    const rack = new Rack();
    // RTT 50: segment 1 (sent at 1) is SACKed at 51; segment 0 is outstanding.
    ack(sb, rack, 0, [[100, 200]], 1000, 51);
    expect(rack.rtt).toBe(50);
    expect(rack.xmitTs).toBe(1);
    expect(rack.minRtt).toBe(50);
    // Segment 0 was sent 1 ms before the delivered one: lost only after 0 + 50 + reo_wnd.
    const reo = rack.reoWnd(false, sb.sackedCount, 50); // no reordering seen, 1 SACKed: min_RTT/4
    expect(reo).toBe(12.5);
    let d = rack.detectLoss(sb, reo, 51);
    expect(d.lostBytes).toBe(0);
    expect(d.timeout).toBeCloseTo(11.5, 9); // 0 + 50 + 12.5 - 51
    d = rack.detectLoss(sb, reo, 62.5);
    expect(d.lostBytes).toBe(MSS);
    expect(sb.nextLost()?.start).toBe(0);
    // Segments sent after the delivered one are never judged by it.
    expect([...sb.records()].filter((r) => r.lost).map((r) => r.start)).toEqual([0]);
  });

  it('[rack.lost-retransmit] a lost retransmission is detected by time, without a timeout (RFC 8985 §2.2, §6.2)', () => {
    const sb = flight(4);
    const rack = new Rack();
    ack(sb, rack, 0, [[100, 400]], 400, 53);
    rack.detectLoss(sb, rack.reoWnd(true, sb.sackedCount, 50), 53);
    expect(sb.nextLost()?.start).toBe(0);
    sb.onSend(0, MSS, 60); // retransmitted at 60 ...and lost again
    sb.onSend(400, MSS, 61); // new data at 61
    expect(rack.detectLoss(sb, 0, 100).lostBytes).toBe(0); // nothing delivered after 60 yet
    ack(sb, rack, 0, [[400, 500], [100, 400]], 500, 111); // segment sent at 61 delivered
    const d = rack.detectLoss(sb, 0, 111);
    expect(d.lostBytes).toBe(MSS); // sent at 60, before the delivered one (61), and 60 + RTT 50 <= 111
    expect(sb.nextLost()?.start).toBe(0);
  });

  it('[rack.reordering] reordering seen widens reo_wnd from 0 to min_RTT/4; D-SACKs raise it once per round trip, capped at SRTT (RFC 8985 §6.2 steps 3-4)', () => {
    const rack = new Rack();
    const sb = flight(6);
    ack(sb, rack, 0, [[200, 300]], 600, 42); // RTT 40
    expect(rack.reoWnd(true, 1, 40)).toBe(0); // in recovery, no reordering seen: DupThresh-like
    expect(rack.reoWnd(false, 3, 40)).toBe(0);
    expect(rack.reoWnd(false, 1, 40)).toBe(10);
    // Segment 1 (never retransmitted) is delivered after segment 2: that is reordering.
    ack(sb, rack, 0, [[100, 300]], 600, 43);
    expect(rack.reorderingSeen).toBe(true);
    expect(rack.reoWnd(true, 3, 40)).toBe(10);
    rack.onDsack(0, 600);
    expect(rack.reoWnd(true, 3, 40)).toBe(20);
    rack.onDsack(300, 600); // same round trip: no second increase
    expect(rack.reoWnd(true, 3, 40)).toBe(20);
    rack.onDsack(700, 900);
    rack.onDsack(1000, 1200);
    rack.onDsack(1300, 1400);
    expect(rack.reoWnd(true, 3, 40)).toBe(40); // capped at SRTT
    for (let i = 0; i < 16; i++) rack.onRecoveryEnd();
    expect(rack.reoWnd(true, 3, 40)).toBe(10); // back to 1 after 16 recoveries
  });

  it('[rack.ambiguous-rtt] an ACK that may be for the original of a retransmitted segment does not update RACK (RFC 8985 §6.2 step 2)', () => {
    const sb = flight(2);
    const rack = new Rack();
    ack(sb, rack, 0, [[100, 200]], 200, 41); // RTT 40
    sb.markLost([...sb.records()][0]!);
    sb.onSend(0, MSS, 50);
    // The cumulative ACK comes 2 ms after the retransmission: faster than min_RTT, so it is for the original.
    const res = sb.onAck(200, undefined, 200);
    rack.onDelivered(res.delivered[0]!, 52);
    expect(rack.xmitTs).toBe(1);
    // With timestamps: the echo says which copy it was.
    const sb2 = flight(1);
    const r2 = new Rack();
    r2.minRtt = 1;
    sb2.markLost([...sb2.records()][0]!);
    sb2.onSend(0, MSS, 50);
    r2.onDelivered(sb2.onAck(100, undefined, 100).delivered[0]!, 90, 0); // echo of the original (sent at 0)
    expect(r2.xmitTs).toBe(-Infinity);
    expect(sentAfter(5, 10, 5, 9)).toBe(true);
    expect(sentAfter(5, 9, 5, 10)).toBe(false);
    // In the same ms the transmission order decides: a retransmission of a low sequence number
    // sent after new data above it is sent after it.
    expect(sentAfter(5, 9, 5, 10, 7, 6)).toBe(true);
    expect(sentAfter(5, 10, 5, 9, 6, 7)).toBe(false);
  });

  it('a retransmission in the same ms as later-sent data is not deemed lost again when that data is SACKed', () => {
    const sb = new Scoreboard(MSS);
    const rack = new Rack();
    for (let i = 0; i < 5; i++) sb.onSend(i * MSS, MSS, 0);
    const first = [...sb.records()][0]!;
    sb.markLost(first);
    sb.onSend(5 * MSS, MSS, 10); // new data at t = 10
    sb.onSend(0, MSS, 10); // then, in the same ms, the retransmission of the first segment
    expect(first.retrans).toBe(true);
    // The new data is SACKed at t = 10 (a link without delay): RACK's newest delivered segment
    // was sent before the retransmission, so the retransmission is not lost.
    for (const r of sb.onAck(0, [[5 * MSS, 6 * MSS]], 6 * MSS).delivered) rack.onDelivered(r, 10);
    rack.detectLoss(sb, 0, 10);
    expect([first.lost, first.retrans]).toEqual([true, true]);
    expect(sb.nextLost()).not.toBe(first);
  });

  it('[tlp.probe] PTO = 2·SRTT + 2 ms (+ worst-case delayed ACK instead for a single segment), never after the RTO; a retransmitted probe acknowledged without D-SACK repaired a loss (RFC 8985 §7.2-§7.4)', () => {
    const rack = new Rack();
    expect(rack.probeTimeout(30, false, 1000)).toBe(60 + PTO_MARGIN_MS);
    expect(rack.probeTimeout(0, false, 1000)).toBe(2); // a LAN's near-zero SRTT still waits two ticks
    expect(rack.probeTimeout(30, true, 1000)).toBe(60 + WC_DEL_ACK_MS);
    expect(rack.probeTimeout(30, true, 100)).toBe(100);
    expect(rack.probeTimeout(undefined, false, 5000)).toBe(1000 + PTO_MARGIN_MS);
    // A probe that retransmitted the last segment, acknowledged plainly: the original was lost.
    rack.onProbeSent(1000, true);
    expect(rack.onAckForProbe(900, undefined)).toBe('none'); // not yet covered
    expect(rack.tlpEndSeq).toBe(1000);
    expect(rack.onAckForProbe(1000, undefined)).toBe('loss');
    expect(rack.tlpEndSeq).toBeUndefined();
    // ...with a D-SACK for it: both copies arrived, nothing was lost.
    rack.onProbeSent(2000, true);
    expect(rack.onAckForProbe(2000, [1900, 2000])).toBe('none');
    expect(rack.tlpEndSeq).toBeUndefined();
    // A probe of new data proves nothing by itself.
    rack.onProbeSent(3000, false);
    expect(rack.onAckForProbe(3000, undefined)).toBe('none');
  });
});
