/**
 * Segment arrival (RFC 9293 §3.10.7) as timelines, for what the wire alone does not show: the
 * cause each state transition is traced with (README "trace"), the counter each dropped or
 * answered segment lands in (stats, /metrics), D-SACK reports of partly old data (RFC 2883),
 * and the TIME-WAIT timer. One stack; the test plays the peer (test/helpers/script.ts).
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/** Passive open with a plain peer (MSS 1460, window scale 7); its final ACK offers 64 KiB. */
function open(h: ScriptHost) {
  return script(h)
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
    .recv('. 1:1(0) ack 1 win 512');
}

/** Every transition of the scripted connection as "FROM -> TO (cause)". */
function trace(h: ScriptHost): string[] {
  const lines: string[] = [];
  h.stack.tcp.onTransitionEvent((e) => lines.push(`${e.from} -> ${e.to} (${e.cause})`));
  return lines;
}

describe('the trace names the cause of every transition', () => {
  it('passive open, the peer closes first, then we do', async () => {
    const h = scriptHost();
    const t = trace(h);
    h.listen({ onConnection: (s) => s.on('end', () => s.end()) });
    await open(h).recv('F. 1:1(0) ack 1 win 512').send('. 1:1(0) ack 2').send('F. 1:1(0) ack 2').recv('. 2:2(0) ack 2 win 512').state('CLOSED');
    expect(t).toEqual([
      'CLOSED -> SYN-RECEIVED (SYN to listener :8080)',
      'SYN-RECEIVED -> ESTABLISHED (ACK of our SYN)',
      'ESTABLISHED -> CLOSE-WAIT (FIN received)',
      'CLOSE-WAIT -> LAST-ACK (close)',
      'LAST-ACK -> CLOSED (ACK of our FIN)',
    ]);
  });

  it('active open, we close first, TIME-WAIT', async () => {
    const h = scriptHost({ tcp: { msl: 1000 } });
    const t = trace(h);
    h.connect();
    await script(h)
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,nop,wscale 7>')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .send('. 1:1(0) ack 1')
      .do((h) => h.socket.end())
      .send('F. 1:1(0) ack 1')
      .recv('. 1:1(0) ack 2 win 512')
      .recv('F. 1:1(0) ack 2 win 512')
      .send('. 2:2(0) ack 2')
      .state('TIME-WAIT');
    expect(t).toEqual([
      'CLOSED -> SYN-SENT (active open)',
      'SYN-SENT -> ESTABLISHED (SYN-ACK received)',
      'ESTABLISHED -> FIN-WAIT-1 (close)',
      'FIN-WAIT-1 -> FIN-WAIT-2 (ACK of our FIN)',
      'FIN-WAIT-2 -> TIME-WAIT (FIN received)',
    ]);
  });

  it('simultaneous close: CLOSING, then TIME-WAIT on the ACK of our FIN', async () => {
    const h = scriptHost();
    const t = trace(h);
    h.listen({ onConnection: (s) => s.end() });
    await open(h).send('F. 1:1(0) ack 1').recv('F. 1:1(0) ack 1 win 512').send('. 2:2(0) ack 2').recv('. 2:2(0) ack 2 win 512').state('TIME-WAIT');
    expect(t.slice(2)).toEqual([
      'ESTABLISHED -> FIN-WAIT-1 (close)',
      'FIN-WAIT-1 -> CLOSING (FIN received (simultaneous close))',
      'CLOSING -> TIME-WAIT (ACK of our FIN)',
    ]);
  });

  it('a FIN that waited for a hole to fill, and resets in each state', async () => {
    const h = scriptHost();
    const t = trace(h);
    h.listen({ allowHalfOpen: true });
    await open(h).recv('F. 101:101(0) ack 1 win 512').send('. 1:1(0) ack 1').recv('P. 1:101(100) ack 1 win 512').send('. 1:1(0) ack 102');
    expect(t.at(-1)).toBe('ESTABLISHED -> CLOSE-WAIT (FIN received (after reassembly))');
    await script(h).recv('R. 102:102(0) ack 1 win 0').state('CLOSED');
    expect(t.at(-1)).toBe('CLOSE-WAIT -> CLOSED (RST received)');
    expect(h.log.events).toContain('error ECONNRESET');

    // LAST-ACK: "enter the CLOSED state, delete the TCB, and return" — no error to report.
    const h1 = scriptHost();
    const t1 = trace(h1);
    h1.listen();
    await open(h1).recv('F. 1:1(0) ack 1 win 512').send('. 1:1(0) ack 2').send('F. 1:1(0) ack 2').recv('R. 2:2(0) ack 1 win 0').state('CLOSED');
    expect(t1.at(-1)).toBe('LAST-ACK -> CLOSED (RST received)');
    expect(h1.log.events.filter((e) => e.startsWith('error'))).toEqual([]);

    const h2 = scriptHost();
    const t2 = trace(h2);
    h2.listen();
    await script(h2)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .recv('R 1:1(0)')
      .state('CLOSED');
    expect(t2.at(-1)).toBe('SYN-RECEIVED -> CLOSED (RST in SYN-RECEIVED)');

    const h3 = scriptHost();
    const t3 = trace(h3);
    h3.connect();
    await script(h3).send('S 0:0(0) win 65535 <*>').recv('R. 0:0(0) ack 1 win 0').state('CLOSED');
    expect(t3.at(-1)).toBe('SYN-SENT -> CLOSED (RST in SYN-SENT)');
    expect(h3.log.events).toContain('error ECONNREFUSED');
  });

  it('simultaneous open, and a RST that refuses it', async () => {
    const h = scriptHost();
    const t = trace(h);
    h.connect();
    await script(h)
      .send('S 0:0(0) win 65535 <*>')
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <*>')
      .recv('R 1:1(0)')
      .state('CLOSED');
    expect(t).toEqual([
      'CLOSED -> SYN-SENT (active open)',
      'SYN-SENT -> SYN-RECEIVED (SYN received (simultaneous open))',
      'SYN-RECEIVED -> CLOSED (RST in SYN-RECEIVED)',
    ]);
    // An active open refused in SYN-RECEIVED tells the application (RFC 9293 §3.10.7.4 second).
    expect(h.log.events).toContain('error ECONNREFUSED');
  });
});

describe('a new SYN in SYN-RECEIVED (RFC 9293 §3.10.7.4 fourth)', () => {
  it('from a passive open, a SYN with another sequence number makes the listener forget the attempt', async () => {
    const h = scriptHost();
    const t = trace(h);
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .recv('S 5000:5000(0) win 65535 <mss 1460>')
      .state('CLOSED');
    expect(t.at(-1)).toBe('SYN-RECEIVED -> CLOSED (SYN in SYN-RECEIVED)');
    expect(h.stack.stats()['tcp.syn.challenged']).toBeUndefined();
  });
});

describe('every segment that is dropped or answered is counted under its reason', () => {
  it('the sequence check, the RST and SYN checks, the ACK check and the out-of-order queue', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .recv('P. 900000:900010(10) ack 1 win 512') // beyond the window
      .send('. 1:1(0) ack 1')
      .recv('P 1:11(10) win 512') // no ACK bit: dropped (§3.10.7.4 fifth)
      .after(500) // one such reply per 500 ms per connection (Linux tcp_invalid_ratelimit)
      .recv('R. 50:50(0) ack 1 win 0') // in the window, not at RCV.NXT
      .send('. 1:1(0) ack 1')
      .after(500)
      .recv('S 7:7(0) win 65535') // SYN in a synchronized state
      .send('. 1:1(0) ack 1')
      .recv('P. 101:201(100) ack 1 win 512') // out of order: queued
      .send('. 1:1(0) ack 1');
    const s = h.stack.stats();
    expect([s['tcp.drop.out-of-window'], s['tcp.drop.no-ack'], s['tcp.rst.challenged'], s['tcp.syn.challenged']]).toEqual([1, 1, 1, 1]);
    expect([s['tcp.challenge-ack.out'], s['tcp.ooo.queued'], s['tcp.ooo.dropped'], s['tcp.rst.in']]).toEqual([2, 1, undefined, undefined]);
    expect(h.received.length).toBe(0);
  });

  it('data after the peer FIN, data beyond a held FIN, and the exact RST', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .recv('F. 201:201(0) ack 1 win 512')
      .send('. 1:1(0) ack 1')
      .recv('P. 1:301(300) ack 1 win 512') // the last 100 bytes lie beyond the FIN
      .send('. 1:1(0) ack 202')
      .send('F. 1:1(0) ack 202') // the application closes on end
      .recv('P. 202:212(10) ack 1 win 512') // in LAST-ACK the peer sends no more
      .recv('R. 202:202(0) ack 1 win 0')
      .state('CLOSED');
    const s = h.stack.stats();
    expect([s['tcp.drop.beyond-fin'], s['tcp.drop.data-after-fin'], s['tcp.rst.in']]).toEqual([1, 1, 1]);
    expect(h.received).toEqual(h.peerBytes(1, 201));
  });

  it('an out-of-order segment that does not fit the queue is counted as dropped and not acknowledged', async () => {
    const h = scriptHost({ tcp: { oooMaxBytes: 100 } });
    h.listen();
    await open(h)
      .recv('P. 101:201(100) ack 1 win 512')
      .send('. 1:1(0) ack 1')
      .recv('P. 301:401(100) ack 1 win 512') // the queue is full
      .send('. 1:1(0) ack 1')
      .recv('P. 1:101(100) ack 1 win 512')
      .send('. 1:1(0) ack 201');
    const s = h.stack.stats();
    expect([s['tcp.ooo.queued'], s['tcp.ooo.dropped']]).toEqual([1, 1]);
  });
});

describe('received bytes', () => {
  it('bytesRead counts the data delivered in order, once', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .recv('P. 1:101(100) ack 1 win 512')
      .recv('P. 1:101(100) ack 1 win 512') // an old duplicate
      .send('. 1:1(0) ack 101')
      .recv('P. 101:151(50) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 151');
    expect(h.socket.bytesRead).toBe(150);
    expect(h.received).toEqual(h.peerBytes(1, 151));
  });

  it('nothing but the SYN leaves while our SYN is unanswered, even when the application writes', async () => {
    const h = scriptHost();
    h.connect();
    await script(h)
      .send('S 0:0(0) win 65535 <*>')
      .do((h) => h.socket.write('early'))
      .quiet(500)
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .send('P. 1:6(5) ack 1 <*>');
  });
});

describe('D-SACK for data that arrives twice (RFC 2883 §4)', () => {
  function openSack(h: ScriptHost) {
    h.listen();
    return script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,nop,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512');
  }

  it('a segment partly below RCV.NXT reports only its old part', async () => {
    const h = scriptHost();
    await openSack(h)
      .recv('P. 1:101(100) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 101')
      .recv('P. 51:151(100) ack 1 win 512') // 51..101 old, 101..151 new
      .after(40)
      .send('. 1:1(0) ack 151 <sack 51:101>');
    expect(h.received).toEqual(h.peerBytes(1, 151));
    expect(h.stack.stats()['tcp.dsack.out']).toBe(1);
  });

  it('a segment wholly below RCV.NXT is reported whole; one beyond the window is not a duplicate', async () => {
    const h = scriptHost();
    await openSack(h)
      .recv('P. 1:101(100) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 101')
      .recv('P. 2000001:2000101(100) ack 1 win 512') // beyond the 1 MiB window
      .send('. 1:1(0) ack 101')
      .recv('P. 21:61(40) ack 1 win 512')
      .send('. 1:1(0) ack 101 <sack 21:61>')
      .recv('. 50:50(0) ack 1 win 512') // an old bare ACK carries no data to report
      .send('. 1:1(0) ack 101');
    expect(h.stack.stats()['tcp.dsack.out']).toBe(1);
  });
});

describe('TIME-WAIT keeps its 2*MSL', () => {
  it('only a retransmitted FIN restarts the timer; an old data segment is acknowledged and does not', async () => {
    const h = scriptHost({ tcp: { msl: 1000 } });
    h.listen({ onConnection: (s) => s.end() });
    await open(h)
      .send('F. 1:1(0) ack 1')
      .recv('. 1:1(0) ack 2 win 512')
      .recv('P. 1:11(10) ack 2 win 512')
      .recv('F. 11:11(0) ack 2 win 512')
      .send('. 2:2(0) ack 12')
      .state('TIME-WAIT')
      .after(1000)
      .recv('P. 1:11(10) ack 2 win 512') // old data: not acceptable
      .send('. 2:2(0) ack 12')
      .after(999)
      .state('TIME-WAIT')
      .after(1)
      .state('CLOSED');
  });
});

describe('PAWS lets a pure ACK through and D-SACKs what it drops (RFC 7323 §5.3, Linux tcp_disordered_ack)', () => {
  /** Passive open with a Linux-like peer: timestamps and SACK agreed. */
  function openLinuxLike(h: ScriptHost) {
    h.listen();
    return script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 1000,wscale 7>')
      .after(20)
      .recv('. 1:1(0) ack 1 win 512 <TS val 1020 ecr 0>');
  }

  it('an old-timestamp pure ACK at RCV.NXT still acknowledges our data; an old FIN or old data is dropped and answered', async () => {
    const h = scriptHost();
    await openLinuxLike(h)
      .recv('P. 1:101(100) ack 1 win 512 <TS val 2000 ecr 0>')
      .do((h) => h.socket.write(Buffer.alloc(10, 1)))
      .send('P. 1:11(10) ack 101 win 512 <TS val 20 ecr 2000>')
      // ACKs may overtake each other: this one's clock is older, but it carries no data.
      .recv('. 101:101(0) ack 11 win 512 <TS val 1990 ecr 20>')
      .quiet(1000) // acknowledged: nothing is retransmitted
      .recv('F. 101:101(0) ack 11 win 512 <TS val 1990 ecr 20>') // a FIN is not a pure ACK
      .send('. 11:11(0) ack 101 win 512 <TS val 1020 ecr 2000>')
      .recv('P. 51:101(50) ack 11 win 512 <TS val 1990 ecr 20>') // old data, old clock
      .send('. 11:11(0) ack 101 win 512 <TS val 1020 ecr 2000,sack 51:101>')
      .recv('P. 101:111(10) ack 11 win 512 <TS val 1500 ecr 20>') // new sequence numbers, old clock
      .send('. 11:11(0) ack 101 win 512 <TS val 1020 ecr 2000>');
    expect(h.stack.stats()['tcp.drop.paws']).toBe(3);
    expect(h.state).toBe('ESTABLISHED');
    expect(h.received).toEqual(h.peerBytes(1, 101));
  });
});

describe('options the connection did not agree to, and how many SACK blocks fit (RFC 7323 §3.2, RFC 2018 §3)', () => {
  it('a timestamp on a connection that did not negotiate them is ignored: the data is taken, the ACK carries none', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .recv('P. 1:101(100) ack 1 win 512 <TS val 5000 ecr 0>')
      .after(40)
      .send('. 1:1(0) ack 101');
    expect(h.received).toEqual(h.peerBytes(1, 101));
  });

  it('an ACK reports four SACK blocks without timestamps, three beside them, most recent first', async () => {
    const h = scriptHost();
    h.listen();
    const s = script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,nop,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512');
    for (const at of [101, 301, 501, 701]) s.recv(`P. ${at}:${at + 100}(100) ack 1 win 512`).send(`. 1:1(0) ack 1 <*>`);
    await s.recv('P. 901:1001(100) ack 1 win 512').send('. 1:1(0) ack 1 <sack 901:1001 701:801 501:601 301:401>');

    const h2 = scriptHost();
    h2.listen();
    const s2 = script(h2)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 1000,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512 <TS val 1000 ecr 0>');
    for (const at of [101, 301, 501]) s2.recv(`P. ${at}:${at + 100}(100) ack 1 win 512 <TS val 1000 ecr 0>`).send(`. 1:1(0) ack 1 <*>`);
    await s2.recv('P. 701:801(100) ack 1 win 512 <TS val 1000 ecr 0>').send('. 1:1(0) ack 1 <TS val 0 ecr 1000,sack 701:801 501:601 301:401>');
  });

  it('a RST we send because of a bad ACK is counted', async () => {
    const h = scriptHost();
    h.listen();
    await script(h).recv('S 0:0(0) win 65535 <mss 1460>').send('S. 0:0(0) ack 1 win 65535 <mss 1460>').recv('. 1:1(0) ack 77 win 512').send('R 77:77(0) win 0');
    const st = h.stack.stats();
    expect([st['tcp.rst.out'], st['tcp.drop.bad-ack'], st['tcp.out']]).toEqual([1, 1, 2]);
  });
});

describe('the handshake', () => {
  it('the window scale offered keeps one unit within the receive-SWS step min(rcvBuf/2, MSS) (RFC 1122 §4.2.3.3)', async () => {
    for (const [rcvBuf, shift] of [[2048, 10], [1024, 9], [65536, 10]] as const) {
      const h = scriptHost({ tcp: { rcvBuf, wscale: 14 } });
      h.listen();
      await script(h).recv('S 0:0(0) win 65535 <mss 1460,wscale 7>').send('S. 0:0(0) ack 1 <*>');
      expect([rcvBuf, h.out[0]!.seg!.options.wscale]).toEqual([rcvBuf, shift]);
    }
  });

  it('a retransmitted SYN-ACK after the handshake is an old duplicate: ACKed, not counted as a challenged SYN', async () => {
    const h = scriptHost();
    h.connect();
    await script(h)
      .send('S 0:0(0) win 65535 <*>')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .send('. 1:1(0) ack 1')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>') // our ACK was lost
      .send('. 1:1(0) ack 1')
      .state('ESTABLISHED');
    const s = h.stack.stats();
    expect([s['tcp.drop.out-of-window'], s['tcp.syn.challenged']]).toEqual([1, undefined]);
  });
});

describe('unread data is held in few buffers', () => {
  it('a peer sending 1-byte segments to a reader that stopped reading makes us keep a handful of buffers, not one per byte', async () => {
    const h = scriptHost();
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() });
    const s = open(h);
    for (let at = 1; at <= 3000; at++) s.recv(`P. ${at}:${at + 1}(1) ack 1 win 512`);
    await s.do((h) => {
      h.consumed = h.out.length; // (the ACKs are not the point)
    });
    const rcv = h.conn!.rcv;
    // The socket took the first byte; the other 2999 sit in buffers of up to 2048 bytes.
    expect([rcv.buffered, rcv.chunks]).toEqual([2999, 2]);
    h.socket.resume();
    await script(h).do((h) => {
      h.consumed = h.out.length;
    });
    expect(h.received).toEqual(h.peerBytes(1, 3001));
    expect([rcv.buffered, rcv.chunks]).toEqual([0, 0]);
  });
});
