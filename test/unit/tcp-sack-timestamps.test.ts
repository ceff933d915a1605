/**
 * Timestamps (RFC 7323) and SACK (RFC 2018, RFC 2883, RFC 6675) as timelines: one stack, the
 * test plays the peer (test/helpers/script.ts). The stack's TS values are relative to its SYN
 * or SYN-ACK (`TS val 0`), the peer's are absolute.
 */
import { describe, expect, it } from 'vitest';
import { openLinuxLike, openWithSack, script, scriptHost } from '../helpers/script.js';

// Our segments say win 512: the receive buffer starts at 64 KiB (initialRcvBuf, autotuned up from
// there, like Linux's 64240) and 65536 >> 7 = 512.
describe('timestamps and SACK negotiation (RFC 7323 §3.2, RFC 2018 §2)', () => {
  it('[ts.negotiate-passive] a Linux SYN <mss, sackOK, TS, nop, wscale> is answered in kind; every later segment carries TS, and data segments leave room for it (MSS 1460 - 12)', async () => {
    const h = scriptHost();
    await openLinuxLike(h)
      .state('ESTABLISHED')
      .do((h) => h.socket.write(Buffer.alloc(3000, 7)))
      .send('. 1:1449(1448) ack 1 win 512 <TS val 20 ecr 1020>')
      .send('. 1449:2897(1448) ack 1 win 512 <TS val 20 ecr 1020>')
      .send('P. 2897:3001(104) ack 1 win 512 <TS val 20 ecr 1020>')
      .after(20)
      .recv('. 1:1(0) ack 3001 win 512 <TS val 1040 ecr 20>')
      .quiet(1000);
    const c = h.conn!;
    expect([c.snd.mss, c.sackOk, c.ts?.enabled]).toEqual([1448, true, true]);
    // 20 ms from the handshake, then 20 ms from the echo of the data's ACK.
    expect(c.snd.rto.srtt).toBe(20);
    expect(h.stack.stats()['tcp.tlp.probe']).toBeUndefined(); // the ACK came before the probe timer
    // A peer offering only SACK gets only SACK (and no timestamps anywhere).
    const h2 = scriptHost();
    h2.listen();
    await script(h2)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512')
      .do((h) => h.socket.write(Buffer.alloc(10, 1)))
      .send('P. 1:11(10) ack 1 win 512');
    expect([h2.conn!.snd.mss, h2.conn!.sackOk, h2.conn!.ts]).toEqual([1460, true, undefined]);
  });

  it('[ts.negotiate-active] our SYN offers <mss, sackOK, TS, wscale>; a SYN-ACK with them turns them on, one without leaves them off', async () => {
    const h = scriptHost();
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .after(7)
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 5000 ecr 0,nop,wscale 7>')
      .send('. 1:1(0) ack 1 win 512 <TS val 7 ecr 5000>')
      .state('ESTABLISHED');
    expect([h.conn!.sackOk, h.conn!.ts?.enabled, h.conn!.snd.mss]).toEqual([true, true, 1448]);
    expect(h.conn!.snd.rto.srtt).toBe(7);
    const h2 = scriptHost();
    await script(h2)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .send('. 1:1(0) ack 1 win 512')
      .do((h) => h.socket.write(Buffer.alloc(10, 1)))
      .send('P. 1:11(10) ack 1 win 512');
    expect([h2.conn!.sackOk, h2.conn!.ts]).toEqual([false, undefined]);
  });
});

describe('PAWS (RFC 7323 §5)', () => {
  it('[ts.paws-drop] a segment with a timestamp older than TS.Recent is dropped, not delivered, and answered with an ACK; RSTs are exempt', async () => {
    const h = scriptHost();
    await openLinuxLike(h)
      .recv('P. 1:101(100) ack 1 win 512 <TS val 2000 ecr 0>')
      .after(40)
      .send('. 1:1(0) ack 101 win 512 <TS val 60 ecr 2000>')
      // An old duplicate from a previous wrap of the sequence space: new sequence numbers, old clock.
      .recv('P. 101:201(100) ack 1 win 512 <TS val 1500 ecr 0>')
      .send('. 1:1(0) ack 101 win 512 <TS val 60 ecr 2000>')
      .do((h) => expect(h.received.length).toBe(100))
      // The real segment, with a current clock, is taken.
      .recv('P. 101:201(100) ack 1 win 512 <TS val 2001 ecr 0>')
      .after(40)
      .send('. 1:1(0) ack 201 win 512 <TS val 100 ecr 2001>')
      // A RST with an old timestamp still resets (§5.3: acceptable regardless of its timestamp).
      .recv('R. 201:201(0) ack 1 win 0 <TS val 5 ecr 0>')
      .state('CLOSED');
    expect(h.received).toEqual(h.peerBytes(1, 201));
    expect(h.stack.stats()['tcp.drop.paws']).toBe(1);
  });
});

describe('TIME-WAIT and timestamps (RFC 6191)', () => {
  it('[ts.time-wait-reuse] a SYN for a 4-tuple in TIME-WAIT with a newer timestamp opens a new connection even with an old ISN; an older timestamp does not', async () => {
    const h = scriptHost();
    await openLinuxLike(h)
      .do((h) => h.socket.end())
      .send('F. 1:1(0) ack 1 <TS val 20 ecr 1020>')
      .recv('. 1:1(0) ack 2 win 512 <TS val 1030 ecr 20>')
      .recv('F. 1:1(0) ack 2 win 512 <TS val 1031 ecr 20>')
      .send('. 2:2(0) ack 2 <TS val 20 ecr 1031>')
      .state('TIME-WAIT')
      .after(1000)
      // Same ISN as before (below RCV.NXT: the sequence rule would refuse it), clock from before: no.
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7>')
      .send('. 2:2(0) ack 2 <TS val 1020 ecr 1031>')
      .state('TIME-WAIT')
      // The same with a newer timestamp: the old incarnation is gone, a new one answers.
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 5000 ecr 0,nop,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 5000,wscale 7>')
      .state('SYN-RECEIVED');
    expect(h.stack.stats()['tcp.time-wait.reused']).toBe(1);
    // The new incarnation's clock continues the old one's (one offset per 4-tuple).
    expect(h.out.at(-1)!.seg!.options.timestamp!.value - h.out[1]!.seg!.options.timestamp!.value).toBe(1000);
  });
});

describe('SACK (RFC 2018, RFC 2883, RFC 6675)', () => {
  it('[sack.receiver-timeline] out-of-order data is reported in SACK blocks, the newest first; a duplicate gets a D-SACK block once (RFC 2018 §4, RFC 2883 §4)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,sackOK,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512')
      .recv('P. 201:301(100) ack 1 win 512')
      .send('. 1:1(0) ack 1 <sack 201:301>')
      .recv('P. 401:501(100) ack 1 win 512')
      .send('. 1:1(0) ack 1 <sack 401:501 201:301>')
      .recv('P. 301:351(50) ack 1 win 512') // extends the older range: it becomes the newest
      .send('. 1:1(0) ack 1 <sack 201:351 401:501>')
      // A duplicate of data held out of order: D-SACK first, then the range that holds it.
      .recv('P. 401:501(100) ack 1 win 512')
      .send('. 1:1(0) ack 1 <sack 401:501 401:501 201:351>')
      .recv('P. 1:201(200) ack 1 win 512') // fills the first hole
      .send('. 1:1(0) ack 351 <sack 401:501>')
      // A duplicate below RCV.NXT: D-SACK, once.
      .recv('P. 1:101(100) ack 1 win 512')
      .send('. 1:1(0) ack 351 <sack 1:101 401:501>')
      .recv('P. 351:401(50) ack 1 win 512')
      .send('. 1:1(0) ack 501');
    expect(h.received).toEqual(h.peerBytes(1, 501));
  });

  it('[sack.retransmit-holes] with SACK the sender retransmits exactly the holes the peer reports, once each, without a timeout (RFC 6675 §5)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(10_000, 3)))
      .do((h) => expect(h.unread.map((c) => h.describe(c, false, false)).at(-1)).toBe('P. 9001:10001(1000) ack 1')) // the initial window
      .do((h) => (h.consumed = h.out.length))
      .after(20)
      // Segments 1001:2001 and 4001:5001 were lost; the peer SACKs the rest as it arrives.
      .recv('. 1:1(0) ack 1001 win 60000')
      .recv('. 1:1(0) ack 1001 win 60000 <sack 2001:3001>')
      .recv('. 1:1(0) ack 1001 win 60000 <sack 2001:4001>')
      .recv('. 1:1(0) ack 1001 win 60000 <sack 5001:6001 2001:4001>')
      .recv('. 1:1(0) ack 1001 win 60000 <sack 5001:7001 2001:4001>')
      .recv('. 1:1(0) ack 1001 win 60000 <sack 5001:8001 2001:4001>')
      .recv('. 1:1(0) ack 1001 win 60000 <sack 5001:9001 2001:4001>')
      .recv('. 1:1(0) ack 1001 win 60000 <sack 5001:10001 2001:4001>')
      .do((h) => {
        const sent = h.unread.map((c) => h.describe(c, false, false));
        h.consumed = h.out.length;
        // Exactly the two holes, the first one first; nothing the peer holds.
        expect(sent).toEqual(['. 1001:2001(1000) ack 1', '. 4001:5001(1000) ack 1']);
      })
      .recv('. 1:1(0) ack 4001 win 60000 <sack 5001:10001>')
      .recv('. 1:1(0) ack 10001 win 60000')
      .quiet(5000);
    const s = h.stack.stats();
    expect(s['tcp.retransmit']).toBe(2);
    expect(s['tcp.rto']).toBeUndefined();
    expect(s['tcp.sack.recovery']).toBe(1);
  });

  it('[sack.hostile-ack] SACK blocks for data never sent, below SND.UNA or reversed are ignored and counted; nothing is retransmitted because of them', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 20)
      .do((h) => h.socket.write(Buffer.alloc(4000, 3)))
      .do((h) => (h.consumed = h.out.length))
      .recv('. 1:1(0) ack 1001 win 60000 <sack 9001:10001>') // never sent
      .recv('. 1:1(0) ack 1001 win 60000 <sack 3001:2001>') // reversed
      .recv('. 1:1(0) ack 1001 win 60000 <sack 3001:90001>') // runs past SND.MAX
      .quiet(0)
      .recv('. 1:1(0) ack 4001 win 60000')
      .quiet(1000);
    const s = h.stack.stats();
    expect(s['tcp.sack.invalid']).toBe(3);
    expect(s['tcp.retransmit']).toBeUndefined();
  });

  it('[tlp.tail-probe] the last segments of a burst lost: a tail loss probe after 2 SRTT brings the SACK that repairs them, not a 200 ms+ RTO (RFC 8985 §7)', async () => {
    const h = scriptHost({ tcp: { timestamps: false } });
    await openWithSack(h, 10)
      .do((h) => h.socket.write(Buffer.alloc(4000, 3)))
      .send('. 1:1001(1000) ack 1')
      .send('. 1001:2001(1000) ack 1')
      .send('. 2001:3001(1000) ack 1') // lost
      .send('P. 3001:4001(1000) ack 1') // lost
      .after(10)
      .recv('. 1:1(0) ack 2001 win 60000')
      // Nothing triggers fast recovery; PTO = 2 * SRTT + 2 ms = 22 ms after that ACK: the last
      // segment again, as the probe (RFC 8985 §7.3).
      .quiet(21)
      .after(1)
      .send('P. 3001:4001(1000) ack 1')
      .after(10)
      // Its SACK lets RACK see that 2001:3001, sent before it, is lost.
      .recv('. 1:1(0) ack 2001 win 60000 <sack 3001:4001>')
      .send('. 2001:3001(1000) ack 1')
      .after(10)
      .recv('. 1:1(0) ack 4001 win 60000')
      .quiet(2000);
    const s = h.stack.stats();
    expect(s['tcp.tlp.probe']).toBe(1);
    expect(s['tcp.tlp.recovered']).toBe(1);
    expect(s['tcp.rto']).toBeUndefined();
  });
});
