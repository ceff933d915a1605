/**
 * Every segment sent again is counted once, whatever sent it: the connection's `retransmits` (what
 * `netstack connections` and the watch view show, like tcpi_total_retrans) and the stack's
 * `tcp.retransmit` counter. And RFC 5681 §3.1's rule for repeated timeouts: ssthresh is set on the
 * first timeout of a segment and "held constant" when the same segment times out again.
 */
import { describe, expect, it } from 'vitest';
import type { ScriptHost } from '../helpers/script.js';
import { passiveOpen, script, scriptHost } from '../helpers/script.js';

function counts(h: ScriptHost): [number | undefined, number | undefined, number | undefined] {
  const st = h.stack.stats();
  return [h.conn?.snd.retransmits, st['tcp.retransmit'], st['tcp.rto']];
}

describe('retransmissions are counted once each', () => {
  it('a SYN sent again after the initial RTO', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <*>')
      .after(1000) // RFC 6298 §2.1: the initial RTO is 1 s
      .send('S 0:0(0) win 65535 <*>')
      .do((h) => expect(counts(h)).toEqual([1, 1, 1]))
      .after(2000)
      .send('S 0:0(0) win 65535 <*>');
    expect(counts(h)).toEqual([2, 2, 2]);
  });

  it('data sent again by the retransmission timer (no SACK: go back to SND.UNA)', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    await passiveOpen(h)
      .do((h) => h.socket.write(Buffer.alloc(2000, 1)))
      .send('. 1:1461(1460) ack 1')
      .send('P. 1461:2001(540) ack 1')
      .after(200) // the RTO: 200 ms (the minimum) after a zero handshake RTT
      .send('. 1:1461(1460) ack 1')
      .recv('. 1:1(0) ack 1461 win 65535')
      .send('P. 1461:2001(540) ack 1'); // cwnd 2 segments: the rest goes again at once
    expect(counts(h)).toEqual([2, 2, 1]);
  });

  it('a hole sent again from the SACK scoreboard', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: true } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1000,sackOK>')
      .send('S. 0:0(0) ack 1 <*>')
      .after(100)
      .recv('. 1:1(0) ack 1 win 65535')
      .do((h) => h.socket.write(Buffer.alloc(4000, 1)))
      .send('. 1:1001(1000) ack 1')
      .send('. 1001:2001(1000) ack 1')
      .send('. 2001:3001(1000) ack 1')
      .send('P. 3001:4001(1000) ack 1')
      .after(100)
      .recv('. 1:1(0) ack 1 win 65535 <sack 1001:2001>')
      .recv('. 1:1(0) ack 1 win 65535 <sack 1001:3001>')
      .recv('. 1:1(0) ack 1 win 65535 <sack 1001:4001>') // the third duplicate: 1:1001 is lost
      .send('. 1:1001(1000) ack 1')
      .recv('. 1:1(0) ack 4001 win 65535');
    expect(counts(h)).toEqual([1, 1, undefined]);
    expect(h.stack.stats()['tcp.sack.recovery']).toBe(1);
  });
});

describe('repeated timeouts of one segment (RFC 5681 §3.1)', () => {
  it('the first timeout sets ssthresh from the window; the second of the same segment holds it', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    let first = 0;
    await passiveOpen(h)
      .do((h) => h.socket.write(Buffer.alloc(10 * 1460, 1)))
      .do((h) => (h.consumed = h.out.length)) // the initial window, ten segments
      .after(200)
      .send('. 1:1461(1460) ack 1')
      .do((h) => {
        first = h.conn!.snd.cc.ssthresh;
        // CUBIC (the default): β = 0.7 of the ten segments in flight (RFC 9438 §4.6).
        expect([first, h.conn!.snd.cc.cwnd]).toEqual([Math.floor(0.7 * 10 * 1460), 1460]);
      })
      .after(400)
      .send('. 1:1461(1460) ack 1')
      // Held. (Recomputed it would come out the same here: the flight is what it was, and only
      // an ACK could change it, which ends the run of timeouts.)
      .do((h) => expect([h.conn!.snd.cc.ssthresh, h.conn!.snd.cc.cwnd]).toEqual([first, 1460]));
  });
});

describe("Karn's algorithm in the handshake (RFC 6298 §3)", () => {
  it('when the peer sent its SYN again and we answered it again, the ACK that completes the handshake is no RTT sample', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 <*>')
      .after(300)
      .recv('S 0:0(0) win 65535 <mss 1460>') // its SYN again: our SYN-ACK is answered again
      .send('S. 0:0(0) ack 1 <*>')
      .after(10)
      .recv('. 1:1(0) ack 1 win 65535') // an answer to either SYN-ACK: 10 ms or 310 ms?
      .do((h) => expect([h.conn!.snd.rto.srtt, h.conn!.snd.rto.rto]).toEqual([undefined, 1000]));
    expect(h.stack.stats()['tcp.syn.retransmitted-in']).toBe(1);
  });

  it('without that, the ACK of our SYN-ACK is a sample', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 <*>')
      .after(10)
      .recv('. 1:1(0) ack 1 win 65535')
      .do((h) => expect(h.conn!.snd.rto.srtt).toBe(10));
  });
});
