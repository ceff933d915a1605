/**
 * An application callback may abort the connection while the stack is still handling the segment
 * that triggered it (here `drain`, raised while the ACK field is processed, RFC 9293 §3.10.7.4
 * fifth step). The connection is then CLOSED: the rest of that segment (its data, its FIN) must
 * not be processed, acknowledged or delivered — the RST is the last thing the peer hears.
 */
import { describe, expect, it } from 'vitest';
import type { TcpStream } from '../../src/tcp/stream.js';
import { script, scriptHost } from '../helpers/script.js';

describe('an abort from inside a callback', () => {
  it('a `drain` handler that destroys the stream: RST, and the data and FIN on the same segment are neither acknowledged nor delivered', async () => {
    const h = scriptHost({ tcp: { initialSndBuf: 3000, sndBuf: 3000 } });
    const events: string[] = [];
    let stream: TcpStream | undefined;
    h.stack
      .createServer({
        onStream: (s) => {
          stream = s;
          s.start({
            data: (c) => events.push(`data ${c.length}`),
            end: () => events.push('end'),
            drain: () => {
              events.push('drain');
              s.destroy();
            },
            finish: () => events.push('finish'),
            error: (e) => events.push(`error ${e.code}`),
            close: (hadError) => events.push(`close ${hadError}`),
          });
          s.write(new Uint8Array(1000));
          s.write(new Uint8Array(2500)); // past the 3000-byte send buffer: `drain` is wanted
        },
      })
      .listen(h.localPort);
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .recv('. 1:1(0) ack 1 win 65535')
      .send('. 1:1461(1460) ack 1')
      .send('. 1461:2921(1460) ack 1')
      .send('P. 2921:3501(580) ack 1')
      // The ACK makes room (drain → destroy → RST); the data and FIN it carries come too late.
      .recv('FP. 1:101(100) ack 3501 win 65535')
      .send('R. 3501:3501(0) ack 1')
      .quiet(1000)
      .state('CLOSED');
    expect(events).toEqual(['drain', 'close false']);
    const st = h.stack.stats();
    expect(st['tcp.rst.out']).toBe(1);
    // Nothing of the segment's text was looked at after the abort: its FIN was not taken, and its
    // data was not even counted as dropped.
    expect(stream!.conn.finReceived).toBe(false);
    expect(stream!.conn.rcv.nxt).toBe((h.peerIsn + 1) >>> 0);
    expect(st['tcp.drop.data-after-fin']).toBeUndefined();
  });
});
