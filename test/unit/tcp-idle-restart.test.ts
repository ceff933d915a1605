/**
 * RFC 5681 §4.1's restart window at its boundary, and its counter: a sender idle for MORE than an
 * RTO restarts from min(IW, cwnd) and counts `tcp.idle-restart`; idle for exactly one RTO, it keeps
 * the cwnd slow start reached. The first data of a connection is no restart (nothing was idle).
 */
import { describe, expect, it } from 'vitest';
import { newReno } from '../../src/tcp/congestion.js';
import type { ScriptHost } from '../helpers/script.js';
import { script, scriptHost } from '../helpers/script.js';

const MSS = 1460;

/** Handshake RTT 100 ms, ten segments out at +100, acknowledged at +200: cwnd 20 segments, RTO 250 ms. */
function grown(h: ScriptHost) {
  h.listen();
  return script(h)
    .recv('S 0:0(0) win 65535 <mss 1460,nop,wscale 7>')
    .send('S. 0:0(0) ack 1 <*>')
    .after(100)
    .recv('. 1:1(0) ack 1 win 1000')
    .do((h) => h.socket.write(Buffer.alloc(10 * MSS, 1)))
    .do((h) => {
      expect(h.unread.length).toBe(10);
      h.consumed = h.out.length;
      expect(h.stack.stats()['tcp.idle-restart']).toBeUndefined(); // the first data: nothing was idle
    })
    .after(100)
    .recv(`. 1:1(0) ack ${1 + 10 * MSS} win 1000`)
    // RFC 6298 §2.3: SRTT 100, RTTVAR 3/4 · 50 = 37.5, RTO = 100 + 4 · 37.5.
    .do((h) => expect([h.conn!.snd.cc.cwnd, h.conn!.snd.rto.rto]).toEqual([20 * MSS, 250]));
}

describe('restart after idle (RFC 5681 §4.1)', () => {
  it('idle for exactly one RTO since the last data went out: the next burst is the whole cwnd', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false, congestionControl: newReno } });
    await grown(h)
      .after(150) // the last data left at +100: 250 ms ago now
      .do((h) => h.socket.write(Buffer.alloc(40 * MSS, 2)))
      .do((h) => {
        expect(h.unread.length).toBe(20);
        h.consumed = h.out.length;
      });
    expect(h.stack.stats()['tcp.idle-restart']).toBeUndefined();
  });

  it('idle for longer than one RTO: the next burst is the initial window, and the restart is counted', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false, congestionControl: newReno } });
    await grown(h)
      .after(151)
      .do((h) => h.socket.write(Buffer.alloc(40 * MSS, 2)))
      .do((h) => {
        expect(h.unread.length).toBe(10);
        h.consumed = h.out.length;
      });
    expect(h.stack.stats()['tcp.idle-restart']).toBe(1);
  });
});
