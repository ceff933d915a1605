/**
 * The user calls of RFC 9293 §3.10.2-§3.10.5 in each state, as timelines (test/helpers/script.ts):
 * what CLOSE and ABORT put on the wire, and which state they leave. The calls go to the
 * connection itself (the TCB), since a socket reaches some states (SYN-RECEIVED, CLOSING,
 * LAST-ACK with unread data) only in roundabout ways.
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost, simultaneousOpen } from '../helpers/script.js';
import type { Script, ScriptHost } from '../helpers/script.js';

/** Passive open with a plain peer; the application does not read (unread data stays in TCP). */
function open(h: ScriptHost): Script {
  h.listen({ read: false, allowHalfOpen: true });
  return script(h)
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
    .recv('. 1:1(0) ack 1 win 512');
}

/** The calls, and the runtime's flush that follows a user call (as TcpSocket's do). */
const abort = (h: ScriptHost) => {
  h.conn!.abort(h.clock.now());
  h.stack.kick();
};
const close = (h: ScriptHost) => {
  h.conn!.close();
  h.stack.kick();
};

describe('ABORT (RFC 9293 §3.10.5)', () => {
  it('in ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1 and FIN-WAIT-2 sends <SEQ=SND.NXT><CTL=RST> and ends in CLOSED', async () => {
    const est = scriptHost();
    await open(est).do(abort).send('R. 1:1(0) ack 1').state('CLOSED');

    const closeWait = scriptHost();
    await open(closeWait).recv('F. 1:1(0) ack 1 win 512').send('. 1:1(0) ack 2').state('CLOSE-WAIT').do(abort).send('R. 1:1(0) ack 2').state('CLOSED');

    const finWait1 = scriptHost();
    await open(finWait1).do(close).send('F. 1:1(0) ack 1').state('FIN-WAIT-1').do(abort).send('R. 2:2(0) ack 1').state('CLOSED');

    const finWait2 = scriptHost();
    await open(finWait2)
      .do(close)
      .send('F. 1:1(0) ack 1')
      .recv('. 1:1(0) ack 2 win 512')
      .state('FIN-WAIT-2')
      .do(abort)
      .send('R. 2:2(0) ack 1')
      .state('CLOSED');
    expect(finWait2.stack.stats()['tcp.rst.out']).toBe(1);
  });

  it('in SYN-RECEIVED (simultaneous open) sends a RST too', async () => {
    const h = scriptHost();
    await simultaneousOpen(h)
      .state('SYN-RECEIVED')
      .do(abort)
      .send('R. 1:1(0) ack 1')
      .state('CLOSED');
  });

  it('in SYN-SENT, CLOSING, LAST-ACK and TIME-WAIT sends nothing: "delete the TCB, enter CLOSED"', async () => {
    const synSent = scriptHost();
    synSent.connect();
    await script(synSent).send('S 0:0(0) win 65535 <*>').do(abort).state('CLOSED').quiet(5000);

    const closing = scriptHost();
    await open(closing).do(close).send('F. 1:1(0) ack 1').recv('F. 1:1(0) ack 1 win 512').send('. 2:2(0) ack 2').state('CLOSING').do(abort).state('CLOSED').quiet(5000);

    const lastAck = scriptHost();
    await open(lastAck).recv('F. 1:1(0) ack 1 win 512').send('. 1:1(0) ack 2').do(close).send('F. 1:1(0) ack 2').state('LAST-ACK').do(abort).state('CLOSED').quiet(5000);

    const timeWait = scriptHost();
    await open(timeWait)
      .do(close)
      .send('F. 1:1(0) ack 1')
      .recv('F. 1:1(0) ack 2 win 512')
      .send('. 2:2(0) ack 2')
      .state('TIME-WAIT')
      .do(abort)
      .state('CLOSED')
      .quiet(5000);
    for (const h of [synSent, closing, lastAck, timeWait]) expect(h.stack.stats()['tcp.rst.out']).toBeUndefined();
  });
});

describe('CLOSE (RFC 9293 §3.10.4)', () => {
  it('in SYN-SENT deletes the TCB: nothing is sent, not even a RST', async () => {
    const h = scriptHost();
    h.connect();
    await script(h).send('S 0:0(0) win 65535 <*>').do(close).state('CLOSED').quiet(5000);
  });

  it('in SYN-RECEIVED is queued: the FIN follows once our SYN is acknowledged (FIN-WAIT-1)', async () => {
    const h = scriptHost();
    await simultaneousOpen(h)
      .do(close)
      .state('SYN-RECEIVED')
      .quiet(100)
      .recv('. 1:1(0) ack 1 win 512')
      .send('F. 1:1(0) ack 1')
      .state('FIN-WAIT-1');
  });

  it('in ESTABLISHED sends a FIN after the queued data and enters FIN-WAIT-1; in CLOSE-WAIT, LAST-ACK', async () => {
    const est = scriptHost();
    await open(est)
      .do((h) => {
        h.conn!.send(Buffer.from('bye'));
        close(h);
        h.stack.kick();
      })
      .state('FIN-WAIT-1')
      .send('FP. 1:4(3) ack 1');

    const closeWait = scriptHost();
    await open(closeWait).recv('F. 1:1(0) ack 1 win 512').send('. 1:1(0) ack 2').do(close).state('LAST-ACK').send('F. 1:1(0) ack 2');
  });

  it('when already closing is "error: connection closing": nothing more is sent, the state stays', async () => {
    for (const [name, reach] of [
      ['FIN-WAIT-1', (s: Script) => s.do(close).send('F. 1:1(0) ack 1')],
      ['FIN-WAIT-2', (s: Script) => s.do(close).send('F. 1:1(0) ack 1').recv('. 1:1(0) ack 2 win 512')],
      ['LAST-ACK', (s: Script) => s.recv('F. 1:1(0) ack 1 win 512').send('. 1:1(0) ack 2').do(close).send('F. 1:1(0) ack 2')],
    ] as const) {
      const h = scriptHost();
      await reach(open(h)).state(name).do(close).state(name).quiet(100);
    }
  });
});

describe('SEND (RFC 9293 §3.10.2)', () => {
  it('after CLOSE is refused: no data follows our FIN', async () => {
    const h = scriptHost();
    let accepted: boolean | undefined;
    await open(h)
      .do(close)
      .send('F. 1:1(0) ack 1')
      .do((h) => {
        accepted = h.conn!.send(Buffer.from('late'));
        h.stack.kick();
      })
      .quiet(199)
      .after(1)
      .send('F. 1:1(0) ack 1') // the retransmitted FIN is still the last thing we send
      .recv('. 1:1(0) ack 2 win 512')
      .quiet(1000);
    expect(accepted).toBe(false);
  });
});

describe('SEND and the memory budget', () => {
  it('queued data is charged to the stack-wide budget until the peer acknowledges it', async () => {
    const h = scriptHost();
    await open(h)
      .do((h) => {
        h.conn!.send(Buffer.alloc(1000, 1));
        h.stack.kick();
      })
      .send('P. 1:1001(1000) ack 1')
      .do((h) => expect(h.stack.tcp.memory.used).toBe(1000))
      .recv('. 1:1(0) ack 1001 win 512')
      .do((h) => expect(h.stack.tcp.memory.used).toBe(0));
  });
});

