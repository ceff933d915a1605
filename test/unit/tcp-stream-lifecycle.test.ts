/**
 * TcpStream, the callback byte stream of the built-in HTTP server (src/tcp/stream.ts), on the
 * wire: it must behave as TcpSocket does for the same calls — data in order and `end` at the
 * peer's FIN, a paused reader closing the advertised window (RFC 9293 §3.8.6), write() reporting a
 * full send buffer and `drain` once ACKs made room, end() sending our FIN after the data
 * (§3.10.4), destroy() aborting with RST (§3.10.5) unless the orderly close is already under way.
 */
import { describe, expect, it } from 'vitest';
import type { TcpStream } from '../../src/tcp/stream.js';
import { script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/** Accept connections as TcpStreams; everything they report goes into `events`. */
function streamServer(h: ScriptHost, opts: { noDelay?: boolean; onStream?: (s: TcpStream) => void } = {}) {
  const got: { stream: TcpStream | undefined; events: string[]; data: Buffer[] } = { stream: undefined, events: [], data: [] };
  h.stack.createServer({
    noDelay: opts.noDelay,
    onStream: (s) => {
      got.stream = s;
      s.start({
        data: (c) => {
          got.data.push(Buffer.from(c));
          got.events.push(`data ${c.length}`);
        },
        end: () => got.events.push('end'),
        drain: () => got.events.push('drain'),
        finish: () => got.events.push('finish'),
        error: (e) => got.events.push(`error ${e.code}`),
        close: (hadError) => got.events.push(`close ${hadError}`),
      });
      opts.onStream?.(s);
    },
  }).listen(h.localPort);
  return got;
}

const open = (h: ScriptHost, win = 65535) =>
  script(h).recv('S 0:0(0) win 65535 <mss 1460>').send(`S. 0:0(0) ack 1 win ${win} <mss 1460>`).recv('. 1:1(0) ack 1 win 65535');

describe('TcpStream reading', () => {
  it('hands over data in order, `end` at the peer FIN; our end() then FINs, finishes and closes without error', async () => {
    const h = scriptHost();
    const got = streamServer(h);
    await open(h)
      .recv('P. 1:101(100) ack 1 win 65535')
      .recv('F. 101:101(0) ack 1 win 65535')
      .send('. 1:1(0) ack 102')
      .do(() => {
        expect(got.events).toEqual(['data 100', 'end']);
        expect(got.stream!.writableEnded).toBe(false);
        got.stream!.end();
        expect(got.stream!.writableEnded).toBe(true);
      })
      .send('F. 1:1(0) ack 102')
      .recv('. 102:102(0) ack 2 win 65535')
      .state('CLOSED');
    expect(got.events).toEqual(['data 100', 'end', 'finish', 'close false']);
    expect(Buffer.concat(got.data)).toEqual(h.peerBytes(1, 101));
    expect(got.stream!.isClosed).toBe(true);
    expect(got.stream!.remotePort).toBe(h.peerPort);
    expect(got.stream!.localPort).toBe(h.localPort);
  });

  it('paused, it leaves the data in the receive buffer, so the advertised window closes; resume() delivers it later, not inside the call', async () => {
    const h = scriptHost({ tcp: { initialRcvBuf: 4000, rcvBuf: 4000 } });
    const got = streamServer(h, { onStream: (s) => s.pause() });
    await open(h, 4000)
      .recv('P. 1:1461(1460) ack 1 win 65535')
      .recv('P. 1461:2921(1460) ack 1 win 65535')
      .send('. 1:1(0) ack 2921 win 1080')
      .recv('P. 2921:4001(1080) ack 1 win 65535')
      .after(40)
      .send('. 1:1(0) ack 4001 win 0')
      .do(() => {
        expect(got.events).toEqual([]);
        expect(got.stream!.isPaused()).toBe(true);
        got.stream!.resume();
        expect(got.stream!.isPaused()).toBe(false);
        got.stream!.resume(); // a second resume changes nothing
        expect(got.events).toEqual([]); // delivery restarts soon, not inside resume()
      })
      .send('. 1:1(0) ack 4001 win 4000'); // the window update once it was read
    expect(Buffer.concat(got.data)).toEqual(h.peerBytes(1, 4001));
  });

  it('paused, it does not report the peer FIN either: `end` comes after resume(), like a paused Readable', async () => {
    const h = scriptHost();
    const got = streamServer(h, { onStream: (s) => s.pause() });
    await open(h)
      .recv('F. 1:1(0) ack 1 win 65535')
      .send('. 1:1(0) ack 2')
      .do(() => {
        expect(got.events).toEqual([]);
        got.stream!.resume();
      })
      .after(1)
      .do(() => expect(got.events).toEqual(['end']));
  });

  it('pausing between arrivals holds back only what comes after', async () => {
    const h = scriptHost();
    const got = streamServer(h);
    await open(h)
      .recv('P. 1:101(100) ack 1 win 65535')
      .do(() => got.stream!.pause())
      .recv('P. 101:301(200) ack 1 win 65535')
      .after(1)
      .do(() => {
        expect(got.events).toEqual(['data 100']);
        got.stream!.resume();
      })
      .after(1)
      .do(() => expect(got.events).toEqual(['data 100', 'data 200']));
  });
});

describe('TcpStream writing', () => {
  it('write() returns false once the send buffer is full, and `drain` comes when ACKs made room', async () => {
    const h = scriptHost({ tcp: { initialSndBuf: 3000, sndBuf: 3000 } });
    let first: boolean | undefined;
    let second: boolean | undefined;
    const got = streamServer(h, {
      onStream: (s) => {
        first = s.write(new Uint8Array(1000));
        second = s.write(new Uint8Array(2500));
      },
    });
    await open(h)
      .send('. 1:1461(1460) ack 1')
      .send('. 1461:2921(1460) ack 1')
      .send('P. 2921:3501(580) ack 1')
      .do(() => {
        expect([first, second]).toEqual([true, false]);
        expect(got.stream!.needDrain).toBe(true);
        expect(got.stream!.bytesWritten).toBe(3500);
        expect(got.events).toEqual([]);
      })
      .recv('. 1:1(0) ack 3501 win 65535')
      .do(() => {
        expect(got.events).toEqual(['drain']);
        expect(got.stream!.needDrain).toBe(false);
      });
  });

  it('writes that fit the send buffer never bring a `drain`', async () => {
    const h = scriptHost();
    let fit: boolean | undefined;
    const got = streamServer(h, { onStream: (s) => (fit = s.write(new Uint8Array(100))) });
    await open(h).send('P. 1:101(100) ack 1').recv('. 1:1(0) ack 101 win 65535').quiet(100);
    expect(fit).toBe(true);
    expect(got.stream!.needDrain).toBe(false);
    expect(got.events).toEqual([]);
  });

  it('after end(), write() is refused and sends nothing; a second end() changes nothing', async () => {
    const h = scriptHost();
    let refused: boolean | undefined;
    const got = streamServer(h, {
      onStream: (s) => {
        s.write(new Uint8Array(10));
        s.end();
        refused = s.write(new Uint8Array(10));
        s.end();
      },
    });
    await open(h).send('FP. 1:11(10) ack 1').quiet(100);
    expect(refused).toBe(false);
    expect(got.stream!.bytesWritten).toBe(10);
    expect(got.events).toEqual(['finish']);
  });

  it('setNoDelay(true) sends a small write at once though data is unacknowledged (Nagle off); setNoDelay(false) turns Nagle back on', async () => {
    const h = scriptHost();
    const got = streamServer(h);
    await open(h)
      .do(() => got.stream!.setNoDelay(false).write(new Uint8Array(10)))
      .send('P. 1:11(10) ack 1')
      .do(() => got.stream!.write(new Uint8Array(10)))
      .quiet(10) // Nagle: held while the first 10 bytes are unacknowledged
      .do(() => got.stream!.setNoDelay(true))
      .send('P. 11:21(10) ack 1')
      .do(() => got.stream!.write(new Uint8Array(10)))
      .send('P. 21:31(10) ack 1');
  });
});

describe('TcpStream ending and aborting', () => {
  it('destroy() with our close not under way aborts the connection with RST; `close` once, no error', async () => {
    const h = scriptHost();
    const got = streamServer(h);
    await open(h)
      .do(() => {
        got.stream!.destroy();
        got.stream!.destroy();
      })
      .send('R. 1:1(0) ack 1')
      .state('CLOSED');
    expect(got.events).toEqual(['close false']);
    expect(got.stream!.write(new Uint8Array(1))).toBe(false);
  });

  it('destroy() after end() lets the orderly close finish (FIN, no RST), as close(2) after shutdown(2)', async () => {
    const h = scriptHost();
    const got = streamServer(h);
    await open(h)
      .do(() => {
        got.stream!.end();
        got.stream!.destroy();
      })
      .send('F. 1:1(0) ack 1')
      .recv('. 1:1(0) ack 2 win 65535')
      .state('FIN-WAIT-2')
      .quiet(1000);
    expect(got.events).toEqual(['finish', 'close false']);
  });

  it('end() and destroy() with data still unread abort with RST instead of a FIN (unread data is lost, RFC 2525 §2.17)', async () => {
    const h = scriptHost();
    const got = streamServer(h, { onStream: (s) => s.pause() });
    await open(h)
      .recv('P. 1:101(100) ack 1 win 65535')
      .do(() => {
        got.stream!.end();
        got.stream!.destroy();
      })
      .send('R. 1:1(0) ack 101')
      .state('CLOSED')
      .quiet(1000);
  });

  it('a RST from the peer is an ECONNRESET error, then `close` with hadError; later writes are refused', async () => {
    const h = scriptHost();
    const got = streamServer(h);
    await open(h).recv('R. 1:1(0) ack 1 win 0').state('CLOSED');
    expect(got.events).toEqual(['error ECONNRESET', 'close true']);
    expect(got.stream!.write(new Uint8Array(1))).toBe(false);
    got.stream!.end();
    got.stream!.destroy();
    expect(got.events).toEqual(['error ECONNRESET', 'close true']);
  });

  it('the peer closing first: `end`; our end() finishes the close from CLOSE-WAIT', async () => {
    const h = scriptHost();
    const got = streamServer(h);
    await open(h)
      .recv('F. 1:1(0) ack 1 win 65535')
      .send('. 1:1(0) ack 2')
      .state('CLOSE-WAIT')
      .do(() => expect(got.events).toEqual(['end']))
      .do(() => got.stream!.end())
      .send('F. 1:1(0) ack 2')
      .state('LAST-ACK')
      .recv('. 2:2(0) ack 2 win 65535')
      .state('CLOSED');
    expect(got.events).toEqual(['end', 'finish', 'close false']);
  });
});
