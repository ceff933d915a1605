/**
 * The edges of RACK's per-ACK rules (RFC 8985 §6.2 steps 2-5, §7.4): which deliveries may update
 * RACK's newest-delivered segment and min_RTT, what counts as reordering, when a D-SACK round ends,
 * which records RACK still judges, and when a TLP episode ends. The scoreboard (sack.ts) is the
 * same one the connection uses; times are ms.
 */
import { describe, expect, it } from 'vitest';
import { Rack } from '../../src/tcp/rack.js';
import { Scoreboard } from '../../src/tcp/sack.js';

const MSS = 100;

/** Segments 0..n-1 of MSS bytes from sequence 0, segment i sent at time i. */
function flight(n: number): Scoreboard {
  const sb = new Scoreboard(undefined, MSS);
  for (let i = 0; i < n; i++) sb.onSend(i * MSS, MSS, i);
  return sb;
}

/** Feed an ACK to the scoreboard and RACK as SackRecovery does. */
function ack(sb: Scoreboard, rack: Rack, una: number, blocks: Array<[number, number]>, sndMax: number, now: number, echoedAt?: number) {
  const res = sb.onAck(una, blocks, sndMax);
  for (const r of res.delivered) rack.onDelivered(r, now, echoedAt);
  return res;
}

const record = (sb: Scoreboard, start: number) => [...sb.records()].find((r) => r.start === start)!;

describe('RACK update rules (RFC 8985 §6.2)', () => {
  it('a retransmitted segment acknowledged exactly min_RTT after its retransmission updates RACK: only a shorter RTT is ambiguous (step 2)', () => {
    const sb = flight(3);
    const rack = new Rack();
    ack(sb, rack, 0, [[100, 200]], 300, 41); // segment 1: RTT 40 = min_RTT
    sb.markLost(record(sb, 0));
    sb.onSend(0, MSS, 50); // segment 0 again at 50
    ack(sb, rack, 0, [[0, 100]], 300, 90); // 40 ms later: the retransmission's own ACK
    expect([rack.xmitTs, rack.rtt, rack.endSeq]).toEqual([50, 40, 100]);
  });

  it('with timestamps, an echo of the retransmission\'s own send time makes its ACK count for the retransmission; an echo of an earlier send does not (step 2)', () => {
    const sb = flight(3);
    const rack = new Rack();
    ack(sb, rack, 0, [[100, 200]], 300, 41); // min_RTT 40
    sb.markLost(record(sb, 0));
    sb.onSend(0, MSS, 50);
    ack(sb, rack, 0, [[0, 100]], 300, 95, 50); // echo = the retransmission's send time
    expect([rack.xmitTs, rack.rtt]).toEqual([50, 45]);
    const sb2 = flight(3);
    const r2 = new Rack();
    ack(sb2, r2, 0, [[100, 200]], 300, 41);
    sb2.markLost(record(sb2, 0));
    sb2.onSend(0, MSS, 50);
    ack(sb2, r2, 0, [[0, 100]], 300, 95, 49); // echo from before it: the original's ACK
    expect([r2.xmitTs, r2.rtt]).toEqual([1, 40]);
  });

  it('an ACK in the same millisecond as the send is an RTT of 0: min_RTT drops to 0 and so does the reordering window min_RTT/4 (step 2, step 4)', () => {
    const sb = flight(4);
    const rack = new Rack();
    ack(sb, rack, 0, [[100, 200]], 400, 41); // RTT 40
    expect(rack.reoWnd(false, 1, 40)).toBe(10);
    sb.onSend(400, MSS, 100);
    ack(sb, rack, 0, [[100, 200], [400, 500]], 500, 100); // delivered in the ms it was sent
    expect(rack.minRtt).toBe(0);
    expect(rack.reoWnd(false, 2, 40)).toBe(0);
  });

  it('a retransmitted segment delivered below RACK.fack is a repaired loss, not reordering: the window stays aggressive (step 3)', () => {
    const sb = flight(4);
    const rack = new Rack();
    ack(sb, rack, 0, [[100, 400]], 400, 43); // segments 1-3 SACKed: fack = 400
    sb.markLost(record(sb, 0));
    sb.onSend(0, MSS, 50);
    ack(sb, rack, 400, [], 400, 95); // the retransmission arrives, below fack
    expect(rack.reorderingSeen).toBe(false);
    expect(rack.reoWnd(true, 3, 40)).toBe(0);
    // The same for a never-retransmitted segment is reordering.
    const sb2 = flight(4);
    const r2 = new Rack();
    ack(sb2, r2, 0, [[100, 400]], 400, 43);
    ack(sb2, r2, 400, [], 400, 44);
    expect(r2.reorderingSeen).toBe(true);
  });

  it('a D-SACK round ends once SND.UNA reaches the SND.NXT it started at: the next D-SACK raises reo_wnd_mult again (step 4: SND.UNA >= RACK.dsack_round)', () => {
    const sb = flight(6);
    const rack = new Rack();
    ack(sb, rack, 0, [[200, 300]], 600, 42); // min_RTT 40
    ack(sb, rack, 0, [[100, 300]], 600, 43); // reordering seen: reo_wnd = min_RTT/4 = 10
    expect(rack.reoWnd(true, 2, 1000)).toBe(10);
    rack.onDsack(0, 600); // round ends at 600
    expect(rack.reoWnd(true, 2, 1000)).toBe(20);
    rack.onDsack(599, 700); // still inside the round
    expect(rack.reoWnd(true, 2, 1000)).toBe(20);
    rack.onDsack(600, 800); // SND.UNA = 600: the round is over
    expect(rack.reoWnd(true, 2, 1000)).toBe(30);
  });

  it('a record already marked lost and not yet retransmitted is not judged again: it arms no reordering timer (step 5)', () => {
    const sb = flight(5);
    const rack = new Rack();
    // Segments 1..3 SACKed at 50: DupThresh marks segment 0 lost at once.
    ack(sb, rack, 0, [[100, 400]], 500, 50);
    sb.markLostByDupThresh();
    expect(record(sb, 0).lost).toBe(true);
    // RACK's own window for segment 0 (sent at 0, RTT 47, reo_wnd 10) has not passed at 50:
    // but the record is already waiting for its retransmission, so there is nothing to wait for.
    expect(rack.detectLoss(sb, 10, 50)).toEqual({ lostBytes: 0, timeout: 0 });
    // Segment 4, sent after the newest delivered one, is not RACK's to judge either.
    expect(record(sb, 400).lost).toBe(false);
  });
});

describe('TLP episodes (RFC 8985 §7.4)', () => {
  it('a D-SACK during the episode of a new-data probe proves nothing about the probe: the episode goes on until SND.UNA passes it (§7.4.1 is for retransmitted probes)', () => {
    const rack = new Rack();
    rack.onProbeSent(3000, false);
    expect(rack.onAckForProbe(2000, [1000, 1100])).toBe('none');
    expect(rack.tlpEndSeq).toBe(3000);
    expect(rack.onAckForProbe(3000, undefined)).toBe('none');
    expect(rack.tlpEndSeq).toBeUndefined();
  });

  it('a retransmitted probe: a D-SACK for data above the probe is not about it; the episode ends when the probe is acknowledged', () => {
    const rack = new Rack();
    rack.onProbeSent(2000, true);
    expect(rack.onAckForProbe(1500, [2100, 2200])).toBe('none');
    expect(rack.tlpEndSeq).toBe(2000);
    expect(rack.onAckForProbe(2000, undefined)).toBe('loss');
  });
});
