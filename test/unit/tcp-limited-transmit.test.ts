/**
 * RFC 3042 limited transmit, counted: without SACK, each of the first two duplicate ACKs lets one
 * new segment out beyond a full cwnd (counted as `tcp.limited-transmit`); with SACK the pipe of
 * RFC 6675 does that by itself (the SACKed segment leaves the pipe), so no allowance is added on
 * top and a duplicate ACK still releases exactly one segment.
 */
import { describe, expect, it } from 'vitest';
import { newReno } from '../../src/tcp/congestion.js';
import type { Script } from '../helpers/script.js';
import { passiveOpen, script, scriptHost } from '../helpers/script.js';

const MSS = 1460;

/** The initial window (10 segments) of `total` bytes the application wrote. */
function initialWindow(s: Script, total: number): Script {
  s.do((h) => h.socket.write(Buffer.alloc(total, 7)));
  for (let i = 0; i < 10; i++) s.send(`. ${1 + i * MSS}:${1 + (i + 1) * MSS}(${MSS}) ack 1`);
  return s.quiet(0);
}

describe('limited transmit (RFC 3042)', () => {
  it('without SACK the first two duplicate ACKs each send one new segment beyond cwnd, each counted; the third retransmits', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false, congestionControl: newReno } });
    h.listen();
    const s = passiveOpen(h);
    initialWindow(s, 12 * MSS)
      .recv('. 1:1(0) ack 1 win 65535')
      .send(`. 14601:16061(${MSS}) ack 1`)
      .quiet(0)
      .do((h) => expect(h.stack.stats()['tcp.limited-transmit']).toBe(1))
      .recv('. 1:1(0) ack 1 win 65535')
      .send(`P. 16061:17521(${MSS}) ack 1`)
      .quiet(0)
      .recv('. 1:1(0) ack 1 win 65535')
      .send(`. 1:1461(${MSS}) ack 1`)
      .quiet(0);
    await s;
    const st = h.stack.stats();
    expect([st['tcp.limited-transmit'], st['tcp.dupack.in'], st['tcp.fast-retransmit'], st['tcp.retransmit']]).toEqual([2, 3, 1, 1]);
    // RFC 5681 §3.2: ssthresh = FlightSize / 2 (12 segments out), cwnd = ssthresh + 3 segments.
    const snd = h.conn!.snd;
    expect([snd.cc.ssthresh, snd.cc.cwnd, snd.retransmits]).toEqual([6 * MSS, 9 * MSS, 1]);
  });

  it('with SACK a duplicate ACK whose block takes one segment out of the pipe sends exactly one new segment, and no allowance is counted', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: true } });
    h.listen();
    // A 100 ms handshake RTT, so RACK's reordering window does not call segment 1 lost at once.
    const s = script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK>')
      .send('S. 0:0(0) ack 1 <*>')
      .after(100)
      .recv('. 1:1(0) ack 1 win 65535');
    initialWindow(s, 12 * MSS)
      .after(100)
      .recv('. 1:1(0) ack 1 win 65535 <sack 1461:2921>')
      .send(`. 14601:16061(${MSS}) ack 1`)
      .quiet(0)
      .recv('. 1:1(0) ack 1 win 65535 <sack 1461:4381>')
      .send(`P. 16061:17521(${MSS}) ack 1`)
      .quiet(0);
    await s;
    expect(h.stack.stats()['tcp.limited-transmit']).toBeUndefined();
    expect(h.stack.stats()['tcp.dupack.in']).toBe(2);
  });
});
