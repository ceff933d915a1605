/**
 * TcpStream (src/tcp/stream.ts) at its edges, as wire timelines: a stream whose owner starts it
 * late or never, a connection that ends underneath it (another owner aborted it), `finish` waiting
 * for room in the send buffer, and no event after `close` (a stream reports `close` exactly once,
 * last, as a Node stream does).
 */
import { describe, expect, it } from 'vitest';
import type { TcpStream, TcpStreamEvents } from '../../src/tcp/stream.js';
import { script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/** Events of `s` as strings, in order. */
function recorder(events: string[]): TcpStreamEvents {
  return {
    data: (c) => events.push(`data ${c.length}`),
    end: () => events.push('end'),
    drain: () => events.push('drain'),
    finish: () => events.push('finish'),
    error: (e) => events.push(`error ${e.code}: ${e.message}`),
    close: (hadError) => events.push(`close ${hadError}`),
  };
}

/** A server whose streams are handed to `onStream` and NOT started. */
function server(h: ScriptHost) {
  const got: { stream: TcpStream | undefined } = { stream: undefined };
  h.stack.createServer({ onStream: (s) => (got.stream = s) }).listen(h.localPort);
  return got;
}

const open = (h: ScriptHost) =>
  script(h).recv('S 0:0(0) win 65535 <mss 1460>').send('S. 0:0(0) ack 1 win 65535 <mss 1460>').recv('. 1:1(0) ack 1 win 65535');

describe('a TcpStream not started yet', () => {
  it('keeps what arrives (and the FIN) until start(), then hands it over in order', async () => {
    const h = scriptHost();
    const got = server(h);
    const events: string[] = [];
    await open(h)
      .recv('P. 1:101(100) ack 1 win 65535')
      .recv('F. 101:101(0) ack 1 win 65535')
      .send('. 1:1(0) ack 102')
      .do(() => {
        expect(got.stream!.conn.rcvBuffered).toBe(100);
        got.stream!.start(recorder(events));
      });
    expect(events).toEqual(['data 100', 'end']);
  });

  it('can be destroyed (RST) or reset by the peer without ever being started', async () => {
    const h = scriptHost();
    const got = server(h);
    await open(h)
      .do(() => got.stream!.destroy())
      .send('R. 1:1(0) ack 1')
      .state('CLOSED');
    expect(got.stream!.isClosed).toBe(true);
    const h2 = scriptHost();
    const got2 = server(h2);
    await open(h2).recv('R. 1:1(0) ack 1 win 0').state('CLOSED');
    expect(got2.stream!.isClosed).toBe(true);
  });
});

describe('a connection that ended underneath the stream (aborted by another owner)', () => {
  /** A started stream whose connection someone else aborts (our RST goes out). */
  function abortedUnderneath() {
    const h = scriptHost();
    const got = server(h);
    const events: string[] = [];
    const s = open(h)
      .do(() => {
        got.stream!.start(recorder(events));
        got.stream!.conn.abort(h.clock.now(), 'test: aborted underneath');
        h.stack.kick();
      })
      .send('R. 1:1(0) ack 1');
    return { got, events, s };
  }

  it('reads as end of stream; a write() then fails with EPIPE and closes the stream with an error', async () => {
    const { got, events, s } = abortedUnderneath();
    let accepted: boolean | undefined;
    await s
      .do(() => {
        expect(events).toEqual(['end']);
        accepted = got.stream!.write(new Uint8Array(10));
      })
      .quiet(100);
    expect(accepted).toBe(false);
    expect(events).toEqual(['end', 'error EPIPE: This socket has been ended by the other party', 'close true']);
    expect(got.stream!.bytesWritten).toBe(0);
  });

  it('end() then finishes at once and the stream closes without error', async () => {
    const { got, events, s } = abortedUnderneath();
    await s
      .do(() => got.stream!.end())
      .quiet(100);
    expect(events).toEqual(['end', 'finish', 'close false']);
  });
});

describe('finish after end() with a full send buffer', () => {
  /** A 3000-byte send buffer; the stream writes 3500 bytes (write() returns false), then end(). */
  function writtenPastTheBuffer() {
    const h = scriptHost({ tcp: { initialSndBuf: 3000, sndBuf: 3000 } });
    const got = server(h);
    const events: string[] = [];
    const s = open(h)
      .do(() => {
        const st = got.stream!;
        st.start(recorder(events));
        st.write(new Uint8Array(3500));
        st.end();
      })
      .send('. 1:1461(1460) ack 1')
      .send('. 1461:2921(1460) ack 1')
      .send('FP. 2921:3501(580) ack 1'); // our FIN rides on the last segment
    return { s, events };
  }

  it('comes once ACKs made room for everything written, not with an ACK that freed too little', async () => {
    const { s, events } = writtenPastTheBuffer();
    await s
      .recv('. 1:1(0) ack 101 win 65535') // 3400 left: still past the buffer
      .do(() => expect(events).toEqual([]))
      .recv('. 1:1(0) ack 1461 win 65535') // 2040 left: room
      .do(() => expect(events).toEqual(['finish', 'drain']));
  });

  it('a reset before then is an error and the end: no `finish` after `close`', async () => {
    const { s, events } = writtenPastTheBuffer();
    await s
      .recv('R. 1:1(0) ack 1 win 0')
      .state('CLOSED')
      .quiet(100);
    expect(events).toEqual(['error ECONNRESET: ECONNRESET: connection reset by peer', 'close true']);
  });
});

describe('TcpStream details', () => {
  it('setNoDelay() with no argument turns Nagle off', async () => {
    const h = scriptHost();
    const got = server(h);
    await open(h)
      .do(() => {
        got.stream!.start(recorder([]));
        got.stream!.setNoDelay(false).write(new Uint8Array(10));
      })
      .send('P. 1:11(10) ack 1')
      .do(() => got.stream!.setNoDelay().write(new Uint8Array(10)))
      .send('P. 11:21(10) ack 1');
  });

  it('destroy() shows as the cause of the abort in the state trace', async () => {
    const h = scriptHost();
    const got = server(h);
    const causes: string[] = [];
    h.stack.onTransition((e) => causes.push(`${e.to} (${e.cause})`));
    await open(h)
      .do(() => got.stream!.destroy())
      .send('R. 1:1(0) ack 1');
    expect(causes).toContain('CLOSED (destroy)');
  });
});
