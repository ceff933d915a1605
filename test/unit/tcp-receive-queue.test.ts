/**
 * The in-order receive queue and what the receiver reports: a reader far behind gets every byte in
 * order however the queue's storage is reorganised, a connection without SACK records no D-SACK,
 * and a read that cannot open the window by the SWS threshold sends no window update.
 */
import { describe, expect, it } from 'vitest';
import type { ScriptHost } from '../helpers/script.js';
import { passiveOpen, script, scriptHost } from '../helpers/script.js';

describe('the receive queue', () => {
  it('a reader that lets 100 segments pile up, then takes them one by one, gets every byte in order', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false, initialRcvBuf: 1 << 20, rcvBuf: 1 << 20 } });
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() }); // the socket takes the first segment only
    const s = passiveOpen(h, { peerOpts: '<mss 1460,nop,wscale 7>', ackWin: 512 });
    // 1500-byte segments: two would not fit in one 2048-byte chunk, so each is buffered on its own.
    for (let i = 0; i < 100; i++) s.recv(`P. ${1 + i * 1500}:${1 + (i + 1) * 1500}(1500) ack 1 win 512`);
    await s.do((h) => (h.consumed = h.out.length)); // the ACKs
    const conn = h.conn!;
    expect(conn.rcv.chunks).toBe(99);
    const got: Uint8Array[] = [];
    for (let i = 0; i < 99; i++) got.push(conn.read()!);
    expect(got.map((c) => c.length)).toEqual(new Array(99).fill(1500));
    expect(Buffer.concat(got).equals(h.peerBytes(1501, 1 + 100 * 1500))).toBe(true);
    expect([conn.read(), conn.rcvBuffered]).toEqual([undefined, 0]);
  });
});

describe('D-SACK', () => {
  it('a duplicate segment on a connection without SACK is answered with a plain ACK and records nothing', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: true } });
    h.listen();
    await passiveOpen(h) // the peer offers no SACK
      .recv('P. 1:101(100) ack 1 win 65535')
      .after(40)
      .send('. 1:1(0) ack 101')
      .recv('P. 1:101(100) ack 1 win 65535')
      .send('. 1:1(0) ack 101 <*>')
      .do((h) => expect(h.unread.length).toBe(0));
    expect(h.out[h.out.length - 1]!.seg!.options.sack).toBeUndefined();
    expect(h.stack.stats()['tcp.dsack.out']).toBeUndefined();
  });
});

describe('window updates after a read (receiver SWS avoidance, RFC 1122 §4.2.3.3)', () => {
  it('a read that frees less than the SWS threshold of a closed window sends no update; the next one, past it, does', async () => {
    // A 4400-byte buffer, no window scaling, MSS 1460: the window opens in steps of at least
    // min(half the buffer, MSS) = 1460. The socket takes the first 200 bytes, then nothing; the
    // rest of the buffer fills with chunks of 1100, 1100 and 2000 bytes (1100 + 900 joined).
    const h = scriptHost({ tcp: { rcvBuf: 4400, initialRcvBuf: 4400, timestamps: false, sack: false } });
    h.listen({ read: false, highWaterMark: 0 });
    const s = script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 4400 <mss 1460>')
      .recv('. 1:1(0) ack 1 win 65535')
      .recv('P. 1:201(200) ack 1 win 65535');
    for (const [from, to] of [[201, 1301], [1301, 2401], [2401, 3501], [3501, 4401]]) s.recv(`P. ${from}:${to}(${to! - from!}) ack 1 win 65535`);
    const read = (h: ScriptHost, len: number) => {
      expect(h.conn!.read()!.length).toBe(len);
      h.stack.kick();
    };
    await s
      .after(40)
      .do((h) => {
        const last = h.out[h.out.length - 1]!.seg!;
        expect([last.ack, last.window, h.conn!.rcvBuffered]).toEqual([(h.peerIsn + 4401) >>> 0, 0, 4200]);
        h.consumed = h.out.length;
      })
      .do((h) => read(h, 1100)) // 1300 free: less than 1460, so the window stays closed, and nothing is sent
      .quiet(100)
      .do((h) => read(h, 1100)) // 2400 free
      .send('. 1:1(0) ack 4401 win 2400');
  });
});
