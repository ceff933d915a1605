/**
 * The sending side of SACK-based loss recovery as timelines (test/helpers/script.ts: one stack, the
 * test plays the peer): RACK's reordering timer (RFC 8985 §6.3), tail loss probes (§7), RFC 6675's
 * pipe limit, SACK reneging at a timeout (RFC 2018 §8) and a path-MTU drop with SACK in use.
 * The packetdrill runner keeps SACK off (its corpus predates it), so these live here.
 */
import { describe, expect, it } from 'vitest';
import { openLinuxLike, openWithSack, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/** The segments sent since the last look, as relative lines without window and options. */
function sentLines(h: ScriptHost): string[] {
  const lines = h.unread.map((c) => h.describe(c, false, false));
  h.consumed = h.out.length;
  return lines;
}

const burst = (n: number) => Array.from({ length: n }, (_, i) => `. ${i * 1000 + 1}:${(i + 1) * 1000 + 1}(1000) ack 1`);

describe('RACK reordering window (RFC 8985 §6.2-6.3)', () => {
  it('[rack.reorder-timer] a hole below one SACKed segment is retransmitted once the reordering window (min_RTT/4) has passed, not at the ACK', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(4000, 3)))
      .do((h) => expect(sentLines(h)).toEqual([...burst(3), 'P. 3001:4001(1000) ack 1']))
      .after(20)
      // 1001:2001 missing, 2001:3001 arrived: one SACKed segment is not DupThresh, and it may be
      // reordering; RACK waits min_RTT/4 = 5 ms beyond the RTT before calling it lost.
      .recv('. 1:1(0) ack 1001 win 60000 <sack 2001:3001>')
      .quiet(4)
      .after(1)
      .send('. 1001:2001(1000) ack 1')
      .after(20)
      .recv('. 1:1(0) ack 4001 win 60000')
      .quiet(1000);
    const s = h.stack.stats();
    expect([s['tcp.sack.recovery'], s['tcp.retransmit'], s['tcp.rto'], s['tcp.tlp.probe']]).toEqual([1, 1, undefined, undefined]);
    expect(h.conn!.snd.cc.inRecovery).toBe(false);
  });

  it('[rack.reordering-tolerated] the missing segment arriving inside the reordering window is not retransmitted and starts no recovery', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(4000, 3)))
      .do((h) => (h.consumed = h.out.length))
      .after(20)
      .recv('. 1:1(0) ack 1001 win 60000 <sack 2001:3001>')
      .after(3)
      .recv('. 1:1(0) ack 3001 win 60000') // it was only late
      .quiet(0)
      .after(1)
      .recv('. 1:1(0) ack 4001 win 60000')
      .quiet(1000);
    const s = h.stack.stats();
    expect([s['tcp.retransmit'], s['tcp.sack.recovery'], s['tcp.fast-retransmit']]).toEqual([undefined, undefined, undefined]);
    expect(h.conn!.snd.cc.ssthresh).toBe(0x7fffffff); // no reduction
  });
});

describe('tail loss probes (RFC 8985 §7)', () => {
  it('[tlp.new-data] the probe is one new segment when cwnd held data back and the peer window allows it; the RTO is re-armed from the probe', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(12000, 3)))
      .do((h) => expect(sentLines(h)).toEqual(burst(10))) // the initial window
      // No ACK at all: PTO = 2·SRTT + 2 ms = 42 ms after the burst. New data goes out, beyond cwnd
      // (RFC 8985 §7.3: "If a previously unsent segment exists AND the receive window allows").
      .quiet(41)
      .after(1)
      .send('. 10001:11001(1000) ack 1')
      // Still nothing: the RTO (200 ms, re-armed by the probe) resends from SND.UNA, one segment.
      .quiet(199)
      .after(1)
      .send('. 1:1001(1000) ack 1')
      .quiet(0);
    const s = h.stack.stats();
    expect([s['tcp.tlp.probe'], s['tcp.rto']]).toEqual([1, 1]);
  });

  it('[tlp.capped-by-rto] one segment in flight: PTO = 2·SRTT + the worst-case delayed ACK would pass the RTO, so the RTO fires at its time instead of a probe (RFC 8985 §7.2)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 10)
      .do((h) => h.socket.write(Buffer.alloc(2000, 3)))
      .send('. 1:1001(1000) ack 1')
      .send('P. 1001:2001(1000) ack 1')
      .after(10)
      .recv('. 1:1(0) ack 1001 win 60000')
      .quiet(199)
      .after(1)
      .send('P. 1001:2001(1000) ack 1')
      .after(10)
      .recv('. 1:1(0) ack 2001 win 60000')
      .quiet(1000);
    const s = h.stack.stats();
    expect([s['tcp.rto'], s['tcp.tlp.probe']]).toEqual([1, undefined]);
    expect(h.conn!.snd.cc.cwnd).toBe(2000); // RTO: one segment, then slow start
  });

  it('[tlp.dsack-no-loss] a probe whose original also arrived (the peer D-SACKs it) repaired nothing: no window reduction (RFC 8985 §7.4.1, RFC 2883)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 10)
      .do((h) => h.socket.write(Buffer.alloc(3000, 3)))
      .do((h) => expect(sentLines(h)).toEqual([...burst(2), 'P. 2001:3001(1000) ack 1']))
      .after(10)
      .recv('. 1:1(0) ack 1001 win 60000')
      // Two segments in flight, nothing new to send: after PTO = 2·SRTT + 2 ms the last one again.
      .quiet(21)
      .after(1)
      .send('P. 2001:3001(1000) ack 1')
      .after(10)
      // Both copies of it arrived: the cumulative ACK plus a D-SACK block for the duplicate.
      .recv('. 1:1(0) ack 3001 win 60000 <sack 2001:3001>')
      .quiet(1000);
    const s = h.stack.stats();
    expect([s['tcp.tlp.probe'], s['tcp.dsack.in'], s['tcp.tlp.recovered']]).toEqual([1, 1, undefined]);
    expect(h.conn!.snd.cc.ssthresh).toBe(0x7fffffff);
  });

  it('[tlp.repaired-loss] the same probe acknowledged without a D-SACK repaired a loss: the window is reduced once, as by a fast recovery (RFC 8985 §7.4.2)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 10)
      .do((h) => h.socket.write(Buffer.alloc(3000, 3)))
      .do((h) => (h.consumed = h.out.length))
      .after(10)
      .recv('. 1:1(0) ack 1001 win 60000')
      .after(22)
      .send('P. 2001:3001(1000) ack 1')
      .after(10)
      .recv('. 1:1(0) ack 3001 win 60000')
      .quiet(1000);
    const s = h.stack.stats();
    expect([s['tcp.tlp.probe'], s['tcp.dsack.in'], s['tcp.tlp.recovered']]).toEqual([1, undefined, 1]);
    // CUBIC: ssthresh = 0.7 * FlightSize (2 segments then), at least 2 segments.
    expect(h.conn!.snd.cc.ssthresh).toBe(2000);
  });
});

describe('SACK recovery limits and timeouts (RFC 6675, RFC 2018 §8)', () => {
  it('[sack.pipe-limit] entering recovery retransmits the first lost segment at once; further holes wait until cwnd - pipe leaves a whole segment (RFC 6675 §5 steps 4.3, C)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(10000, 3)))
      .after(20)
      .recv('. 1:1(0) ack 10001 win 60000') // slow start: cwnd 20 segments
      .do((h) => h.socket.write(Buffer.alloc(20000, 3)))
      .do((h) => expect(sentLines(h)).toHaveLength(30))
      .after(20)
      // 10001:12001 lost; three segments above it SACKed: both lost (DupThresh). Recovery: cwnd =
      // ssthresh = 0.7 * 20000 = 14000, and the first hole goes at once (step 4.3).
      .recv('. 1:1(0) ack 10001 win 60000 <sack 12001:15001>')
      .send('. 10001:11001(1000) ack 1')
      // pipe = 20000 - 3000 SACKed - 1000 lost and not yet resent = 16000 > cwnd: the second waits.
      .quiet(0)
      .do((h) => expect([h.conn!.snd.cc.cwnd, h.conn!.snd.recovery!.pipe]).toEqual([14000, 16000]))
      // Three more SACKed: pipe 13000, one segment fits.
      .recv('. 1:1(0) ack 10001 win 60000 <sack 12001:18001>')
      .send('. 11001:12001(1000) ack 1')
      .quiet(0);
    expect(h.stack.stats()['tcp.sack.recovery']).toBe(1);
  });

  it('[sack.dupacks-without-blocks] three duplicate ACKs without SACK blocks (a middlebox stripped them) still mean SND.UNA\'s segment is lost: it is retransmitted at once (RFC 6675 §5 step 4)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(5000, 3)))
      .do((h) => expect(sentLines(h)).toHaveLength(5))
      .after(20)
      .recv('. 1:1(0) ack 1 win 60000')
      .recv('. 1:1(0) ack 1 win 60000')
      .quiet(0)
      .recv('. 1:1(0) ack 1 win 60000')
      .send('. 1:1001(1000) ack 1')
      .after(20)
      .recv('. 1:1(0) ack 5001 win 60000')
      .quiet(1000);
    const s = h.stack.stats();
    expect([s['tcp.sack.recovery'], s['tcp.retransmit'], s['tcp.rto']]).toEqual([1, 1, undefined]);
  });

  it('[sack.reneging-rto] the segment at SND.UNA SACKed but never cumulatively acknowledged: no tail probe, and the timeout resends from SND.UNA, forgetting every SACK (RFC 2018 §8, RFC 8985 §7.2)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(3000, 3)))
      .do((h) => (h.consumed = h.out.length))
      .after(20)
      .recv('. 1:1(0) ack 1 win 60000 <sack 1:2001>')
      // Segments are SACKed: no loss probe (§7.2). The RTO, 200 ms after the burst, finds the
      // peer holding SND.UNA's segment only "selectively": it reneged, and everything goes again.
      .quiet(179)
      .after(1)
      .send('. 1:1001(1000) ack 1')
      .after(20)
      .recv('. 1:1(0) ack 1001 win 60000')
      .send('. 1001:2001(1000) ack 1') // no longer counted as held by the peer
      .send('P. 2001:3001(1000) ack 1')
      .after(20)
      .recv('. 1:1(0) ack 3001 win 60000')
      .quiet(1000);
    const s = h.stack.stats();
    expect([s['tcp.sack.reneged'], s['tcp.rto'], s['tcp.tlp.probe']]).toEqual([1, 1, undefined]);
  });

  it('[pmtu.sack-resend] "fragmentation needed" with SACK and timestamps: what is in flight is resent at MTU - 40 - 12 bytes, skipping what the peer SACKed (RFC 1191 §6.4, RFC 6691)', async () => {
    const h = scriptHost({});
    await openLinuxLike(h)
      .do((h) => h.socket.write(Buffer.alloc(4 * 1448, 3)))
      .do((h) => expect(sentLines(h)).toHaveLength(4))
      .after(5)
      .recv('. 1:1(0) ack 1 win 512 <sack 1449:2897,TS val 1025 ecr 0>')
      .icmp(3, 4, { seq: 1, mtu: 1000, len: 1500 })
      .do((h) =>
        expect(sentLines(h)).toEqual([
          '. 1:949(948) ack 1',
          '. 949:1449(500) ack 1',
          '. 2897:3845(948) ack 1',
          '. 3845:4345(500) ack 1',
          '. 4345:5293(948) ack 1',
          'P. 5293:5793(500) ack 1',
        ]),
      )
      .do((h) => expect([h.conn!.snd.mss, h.stack.stats()['tcp.pmtu.lowered'], h.conn!.snd.cc.ssthresh]).toEqual([948, 1, 0x7fffffff]))
      // New data after it goes out in 948-byte segments.
      .recv('. 1:1(0) ack 5793 win 512 <TS val 1040 ecr 25>')
      .do((h) => h.socket.write(Buffer.alloc(1000, 3)))
      .send('. 5793:6741(948) ack 1 <*>')
      .send('P. 6741:6793(52) ack 1 <*>');
  });
});
