/**
 * Loss recovery segment by segment (test/helpers/script.ts: one stack, the test plays the
 * receiving peer and decides which segments were "lost"). Peer MSS 1000, no window scaling.
 */
import { describe, expect, it } from 'vitest';
import { passiveOpen, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';
import { newReno } from '../../src/tcp/congestion.js';

function open(h: ScriptHost) {
  return passiveOpen(h, { win: 60000, peerOpts: '<mss 1000>' });
}

describe('fast retransmit and NewReno fast recovery (RFC 5681 §3.2, RFC 6582)', () => {
  it('[cc.newreno-timeline] 3 dup ACKs -> retransmit; inflation sends new data; a partial ACK retransmits the next hole at once; the full ACK deflates', async () => {
    const h = scriptHost({ tcp: { congestionControl: newReno } });
    h.listen();
    await open(h)
      .do((h) => h.socket.write(Buffer.alloc(30_000, 5)))
      // Initial window: 10 segments (RFC 6928).
      .send('. 1:1001(1000) ack 1')
      .send('. 1001:2001(1000) ack 1') // lost
      .send('. 2001:3001(1000) ack 1')
      .send('. 3001:4001(1000) ack 1')
      .send('. 4001:5001(1000) ack 1')
      .send('. 5001:6001(1000) ack 1') // lost too
      .send('. 6001:7001(1000) ack 1')
      .send('. 7001:8001(1000) ack 1')
      .send('. 8001:9001(1000) ack 1')
      .send('. 9001:10001(1000) ack 1')
      .recv('. 1:1(0) ack 1001 win 60000') // slow start: cwnd 11 segments, 9 in flight
      .send('. 10001:11001(1000) ack 1')
      .send('. 11001:12001(1000) ack 1')
      .recv('. 1:1(0) ack 1001 win 60000')
      // RFC 3042 limited transmit: each of the first two duplicates sends one new segment
      // beyond cwnd, cwnd itself unchanged.
      .send('. 12001:13001(1000) ack 1')
      .do((h) => expect(h.conn!.snd.cc.cwnd).toBe(11_000))
      .recv('. 1:1(0) ack 1001 win 60000')
      .send('. 13001:14001(1000) ack 1')
      .recv('. 1:1(0) ack 1001 win 60000')
      // Third: ssthresh = 13000 / 2 = 6500, cwnd = 6500 + 3 * 1000; retransmit the missing segment.
      .send('. 1001:2001(1000) ack 1')
      .do((h) => expect([h.conn!.snd.cc.ssthresh, h.conn!.snd.cc.cwnd, h.conn!.snd.cc.inRecovery]).toEqual([6500, 9500, true]))
      .recv('. 1:1(0) ack 1001 win 60000') // each further duplicate inflates cwnd by one MSS...
      .recv('. 1:1(0) ack 1001 win 60000')
      .recv('. 1:1(0) ack 1001 win 60000')
      .recv('. 1:1(0) ack 1001 win 60000') // 13 500: 500 bytes usable, held (sender SWS)
      .quiet(0)
      .recv('. 1:1(0) ack 1001 win 60000') // 14 500 > 13 000 in flight: a new segment
      .send('. 14001:15001(1000) ack 1')
      // Partial ACK (covers the retransmission, stops at the second hole): retransmit it at once,
      // without waiting for three more duplicates or the RTO; cwnd 14500 - 4000 + 1000.
      .recv('. 1:1(0) ack 5001 win 60000')
      .send('. 5001:6001(1000) ack 1')
      .send('. 15001:16001(1000) ack 1')
      .do((h) => expect([h.conn!.snd.cc.cwnd, h.conn!.snd.cc.inRecovery]).toEqual([11_500, true]))
      // Full ACK (everything up to "recover" = 14001, and more): leave recovery with
      // cwnd = min(ssthresh, FlightSize + MSS) = min(6500, 1000 + 1000).
      .recv('. 1:1(0) ack 15001 win 60000')
      .do((h) => expect([h.conn!.snd.cc.cwnd, h.conn!.snd.cc.inRecovery]).toEqual([2000, false]))
      .send('. 16001:17001(1000) ack 1');
    const s = h.stack.stats();
    expect(s['tcp.fast-retransmit']).toBe(1);
    expect(s['tcp.rto']).toBeUndefined();
    expect(s['tcp.retransmit']).toBe(2);
  });
});

describe('retransmission timer (RFC 6298 §5)', () => {
  it('[rto.timer-rules] restarted by an ACK of new data (5.3), doubled on expiry (5.5), stopped when all is acknowledged (5.2)', async () => {
    const h = scriptHost({ tcp: { congestionControl: newReno } });
    h.listen();
    await open(h)
      .do((h) => h.socket.write(Buffer.alloc(3000, 6)))
      .send('. 1:1001(1000) ack 1')
      .send('. 1001:2001(1000) ack 1')
      .send('P. 2001:3001(1000) ack 1')
      .after(100)
      .recv('. 1:1(0) ack 1001 win 60000') // new data acknowledged: the 200 ms timer starts again now
      .quiet(199)
      .after(1)
      .send('. 1001:2001(1000) ack 1') // RTO: the first unacknowledged segment, cwnd = 1 segment
      .do((h) => expect([h.conn!.snd.cc.cwnd, h.conn!.snd.cc.ssthresh, h.conn!.snd.rto.rto]).toEqual([1000, 1000 * 2, 400]))
      .quiet(399)
      .after(1)
      .send('. 1001:2001(1000) ack 1') // again after 400 ms, and the RTO doubles to 800
      .after(50)
      .recv('. 1:1(0) ack 2001 win 60000')
      .send('P. 2001:3001(1000) ack 1') // go-back-N: the rest follows as cwnd allows
      .after(10)
      .recv('. 1:1(0) ack 3001 win 60000')
      .quiet(5000); // all acknowledged: no timer left
    expect(h.stack.stats()['tcp.rto']).toBe(2);
  });

  it("[rto.karn] Karn's algorithm: no RTT sample from a retransmitted segment; the backed-off RTO stays until a fresh sample (RFC 6298 §3, §5)", async () => {
    const h = scriptHost({ tcp: { congestionControl: newReno } });
    h.listen();
    await open(h)
      .do((h) => h.socket.write(Buffer.alloc(1000, 7)))
      .send('P. 1:1001(1000) ack 1')
      .quiet(199)
      .after(1)
      .send('P. 1:1001(1000) ack 1')
      .after(150)
      // This ACK may answer either transmission: an RTT of 350 or of 150? Karn: don't guess.
      .recv('. 1:1(0) ack 1001 win 60000')
      .do((h) => {
        expect(h.conn!.snd.rto.srtt).toBe(0); // still the handshake's sample
        expect(h.conn!.snd.rto.rto).toBe(400); // still backed off
      })
      .do((h) => h.socket.write(Buffer.alloc(1000, 8)))
      .send('P. 1001:2001(1000) ack 1')
      .after(30)
      .recv('. 1:1(0) ack 2001 win 60000') // a segment sent once: a valid sample of 30 ms
      .do((h) => {
        expect(h.conn!.snd.rto.srtt).toBe(30 / 8);
        expect(h.conn!.snd.rto.backoffCount).toBe(0);
        expect(h.conn!.snd.rto.rto).toBe(200); // the minimum
      });
  });
});
