/**
 * The TCP layer between the wire and the application's listen()/connect(): what happens to a
 * handshake when the accept queue is full or the listener went away (as Linux with
 * tcp_abort_on_overflow = 0: the last ACK is ignored and the SYN-ACK retransmission retries), the
 * ISN a reopened TIME-WAIT 4-tuple gets (RFC 6191, RFC 1122 §4.2.2.13: beyond anything the old
 * incarnation sent), and the errors listen() and connect() give for bad or busy ports (as Node's
 * net: EINVAL, EADDRINUSE).
 */
import { describe, expect, it } from 'vitest';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST } from '../../src/ip/ports.js';
import { TcpLayer } from '../../src/tcp/layer.js';
import { asPeer as as, script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

const stateOf = (h: ScriptHost, port: number) => h.stack.tcp.connectionList().find((c) => c.remotePort === port)?.state ?? 'CLOSED';

describe('a full accept queue (listen backlog)', () => {
  /**
   * Backlog 2, nobody accepting: clients 40000 and 40001 send SYNs, 40000 completes, 40002's SYN
   * still finds room, then 40001 completes: the accept queue (40000, 40001) is full while 40002
   * waits in SYN-RECEIVED.
   */
  function fillAcceptQueue(h: ScriptHost) {
    const l = h.stack.tcp.listen(h.localPort, 2);
    const s = script(h)
      .do(as(40000))
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .do(as(40001))
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .do(as(40000))
      .recv('. 1:1(0) ack 1 win 65535')
      .do(as(40002))
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .do(as(40001))
      .recv('. 1:1(0) ack 1 win 65535')
      .do((h) => {
        expect(l.acceptQueue.map((c) => c.remotePort)).toEqual([40000, 40001]);
        expect(l.acceptQueueFull).toBe(true);
      })
      .do(as(40002));
    return { l, s };
  }

  it('still takes data on a connection waiting in the full queue: only the handshake\'s last ACK is held back', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    const { s } = fillAcceptQueue(h);
    await s.do(as(40000)).recv('P. 1:11(10) ack 1 win 65535').after(40).send('. 1:1(0) ack 11');
    expect(h.stack.stats()['tcp.listen.accept-queue-full']).toBeUndefined();
    expect(h.stack.tcp.connectionList().find((c) => c.remotePort === 40000)!.rcvBuffered).toBe(10);
  });

  it("ignores the handshake's last ACK (no RST); the SYN-ACK retransmission completes it once accept() made room", async () => {
    const h = scriptHost({ tcp: { initialRto: 1000 } });
    const { l, s } = fillAcceptQueue(h);
    await s
      .recv('. 1:1(0) ack 1 win 65535')
      .quiet(0)
      .state('SYN-RECEIVED')
      .do(() => {
        expect(h.stack.stats()['tcp.listen.accept-queue-full']).toBe(1);
        expect(l.accept()?.remotePort).toBe(40000);
      })
      .quiet(999)
      .after(1)
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .recv('. 1:1(0) ack 1 win 65535')
      .state('ESTABLISHED');
    expect(l.acceptQueue.map((c) => c.remotePort)).toEqual([40001, 40002]);
  });

  it('still lets a RST end the waiting half-open connection', async () => {
    const h = scriptHost();
    const { s } = fillAcceptQueue(h);
    await s.recv('R 1:1(0) win 0').quiet(5000).state('CLOSED');
    expect(h.stack.stats()['tcp.listen.accept-queue-full'] ?? 0).toBe(0);
  });

  it('drops a new SYN outright while the accept queue is full (the client retries it)', async () => {
    const h = scriptHost();
    const { l, s } = fillAcceptQueue(h);
    await s.do(as(40003)).recv('S 0:0(0) win 65535 <mss 1460>').quiet(0);
    expect(stateOf(h, 40003)).toBe('CLOSED');
    expect(h.stack.stats()['tcp.listen.syn-dropped']).toBe(1);
    expect(l.acceptQueue.length).toBe(2);
  });
});

describe('a listener that goes away', () => {
  it('resets a handshake that completes after it closed: nobody would ever accept it', async () => {
    const h = scriptHost();
    const l = h.stack.tcp.listen(h.localPort, 8);
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .do(() => h.stack.tcp.unlisten(l))
      .recv('. 1:1(0) ack 1 win 65535')
      .send('R. 1:1(0) ack 1')
      .state('CLOSED');
    expect(l.acceptQueue.length).toBe(0);
  });

  it('a SYN to the port afterwards is refused with RST, ACK', async () => {
    const h = scriptHost();
    const l = h.stack.tcp.listen(h.localPort, 8);
    h.stack.tcp.unlisten(l);
    await script(h).recv('S 0:0(0) win 65535 <mss 1460>').send('R. 0:0(0) ack 1 win 0').state('CLOSED');
  });

  it('closing an old listener again leaves a new listener on the same port alone', async () => {
    const h = scriptHost();
    const old = h.stack.tcp.listen(h.localPort, 8);
    h.stack.tcp.unlisten(old);
    const l = h.stack.tcp.listen(h.localPort, 8);
    h.stack.tcp.unlisten(old);
    await script(h).recv('S 0:0(0) win 65535 <mss 1460>').send('S. 0:0(0) ack 1 win 65535 <mss 1460>').recv('. 1:1(0) ack 1 win 65535').state('ESTABLISHED');
    expect(l.acceptQueue.length).toBe(1);
  });
});

describe('a new SYN that reopens a 4-tuple in TIME-WAIT (RFC 6191)', () => {
  /** The stack closes first (SYN, FIN: it sent ISN..ISN+1); the peer's FIN puts it in TIME-WAIT. */
  function toTimeWait(h: ScriptHost) {
    h.listen({ onConnection: (s) => h.sockets.length === 1 && s.end() });
    return script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .recv('. 1:1(0) ack 1 win 65535')
      .send('F. 1:1(0) ack 1')
      .recv('F. 1:1(0) ack 2 win 65535')
      .send('. 2:2(0) ack 2')
      .state('TIME-WAIT');
  }

  it('soon after the close: the new ISN is 64 KiB past everything the old connection sent, so none of its segments fits the new window', async () => {
    const h = scriptHost({ tcp: { msl: 30_000 } });
    // 10 ms at 250 ticks per ms would move the clock-driven ISN only 2500 ahead.
    await toTimeWait(h).after(10).recv('S 5000:5000(0) win 65535 <mss 1460>').send('S. 0:0(0) ack 5001 win 65535 <mss 1460>');
    expect(h.ourIsns.length).toBe(2);
    // The old incarnation's SND.MAX was ISN+2 (SYN and FIN); the new ISN is 65536 + 2 beyond it.
    expect((h.ourIsns[1]! - h.ourIsns[0]!) >>> 0).toBe(2 + 65_536 + 2);
    expect(h.stack.stats()['tcp.time-wait.reused']).toBe(1);
  });

  it('long after the close: the clock-driven ISN (RFC 6528) is already beyond that, and is kept', async () => {
    const h = scriptHost({ tcp: { msl: 30_000 } });
    await toTimeWait(h).after(20_000).recv('S 5000:5000(0) win 65535 <mss 1460>').send('S. 0:0(0) ack 5001 win 65535 <mss 1460>');
    // 250 ticks per ms (RFC 9293 §3.4.1) over the 20 s: exactly what the clock moved.
    expect((h.ourIsns[1]! - h.ourIsns[0]!) >>> 0).toBe(250 * 20_000);
  });
});

describe('a new SYN without timestamps for a TIME-WAIT connection that used them', () => {
  it('is judged by its sequence number, as if neither incarnation had timestamps (RFC 6191 §2 needs both)', async () => {
    const h = scriptHost({ tcp: { msl: 30_000, sack: false } });
    h.listen({ onConnection: (s) => h.sockets.length === 1 && s.end() });
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,TS val 1000 ecr 0>')
      .send('S. 0:0(0) ack 1 <*>')
      .recv('. 1:1(0) ack 1 win 65535 <TS val 1001 ecr 0>')
      .send('F. 1:1(0) ack 1 <*>')
      .recv('F. 1:1(0) ack 2 win 65535 <TS val 1002 ecr 0>')
      .send('. 2:2(0) ack 2 <*>')
      .state('TIME-WAIT')
      .after(10)
      .recv('S 1:1(0) win 65535 <mss 1460>') // not beyond RCV.NXT (2): an old duplicate, answered with an ACK
      .send('. 2:2(0) ack 2 <*>')
      .state('TIME-WAIT')
      .after(1000)
      .recv('S 5000:5000(0) win 65535 <mss 1460>') // beyond it: a new incarnation
      .send('S. 0:0(0) ack 5001 <*>');
    expect(h.stack.stats()['tcp.time-wait.reused']).toBe(1);
  });
});

describe('listen() and connect() refuse bad and busy ports', () => {
  const layer = (random = () => 0) => new TcpLayer({ addr: 0x0a000001, mtu: 1500, send: () => {}, random, isnSecret: new Uint8Array(16) });

  it('listen: EINVAL outside 0..65535 or not an integer, EADDRINUSE for a port already listening', () => {
    const t = layer();
    for (const p of [-1, 65536, 1.5, Number.NaN]) expect(() => t.listen(p), String(p)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    t.listen(65535);
    t.listen(1);
    // Node's messages, so code written for net.Server reads them the same.
    expect(() => t.listen(65535)).toThrow(expect.objectContaining({ code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use :65535' }));
    expect(() => t.listen(70000)).toThrow(expect.objectContaining({ message: 'invalid port 70000' }));
  });

  it('listen on port 0 takes a free ephemeral port; a zero or negative backlog still admits one connection', () => {
    const t = layer();
    t.listen(EPHEMERAL_FIRST);
    const l = t.listen(0, 0);
    expect(l.port).toBeGreaterThan(EPHEMERAL_FIRST);
    expect(l.port).toBeLessThanOrEqual(EPHEMERAL_LAST);
    expect(l.backlog).toBe(1);
    expect(t.listen(0, -5).backlog).toBe(1);
  });

  it('connect: EINVAL for remote port 0 or above 65535; EADDRINUSE when the explicit local port already talks to that peer', () => {
    const t = layer();
    for (const p of [0, -1, 65536, 80.5]) expect(() => t.connect(0x0a000002, p, 0), String(p)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => t.connect(0x0a000002, 65536, 0)).toThrow(expect.objectContaining({ message: 'invalid port 65536' }));
    expect(t.connect(0x0a000002, 65535, 0).remotePort).toBe(65535);
    t.connect(0x0a000002, 80, 0, 5000);
    expect(() => t.connect(0x0a000002, 80, 0, 5000)).toThrow(expect.objectContaining({ code: 'EADDRINUSE', message: 'connect EADDRINUSE: local port 5000 in use' }));
    // Another peer port (or another peer) is another 4-tuple: fine.
    expect(t.connect(0x0a000002, 81, 0, 5000).localPort).toBe(5000);
    expect(t.connect(0x0a000003, 80, 0, 5000).localPort).toBe(5000);
  });

  it('with every ephemeral port taken: listen(0) fails with EADDRINUSE, connect with EADDRNOTAVAIL', () => {
    const t = layer();
    for (let p = EPHEMERAL_FIRST; p <= EPHEMERAL_LAST; p++) t.listen(p);
    expect(() => t.listen(0)).toThrow(expect.objectContaining({ code: 'EADDRINUSE', message: 'no free port to listen on' }));
    expect(() => t.connect(0x0a000002, 80, 0)).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', message: 'connect EADDRNOTAVAIL: no free local port' }));
    // A port given explicitly is still usable.
    expect(t.connect(0x0a000002, 80, 0, 5000).localPort).toBe(5000);
  });

  it('connect picks an ephemeral local port that no listener holds and no connection to the same peer uses', () => {
    const t = layer();
    t.listen(EPHEMERAL_FIRST);
    const a = t.connect(0x0a000002, 80, 0);
    const b = t.connect(0x0a000002, 80, 0);
    expect(a.localPort).toBe(EPHEMERAL_FIRST + 1);
    expect(b.localPort).toBe(EPHEMERAL_FIRST + 2);
    // An explicit local port of 0 means "pick one", too.
    expect(t.connect(0x0a000002, 80, 0, 0).localPort).toBe(EPHEMERAL_FIRST + 3);
  });
});
