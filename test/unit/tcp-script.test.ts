/**
 * RFC rules stated as timelines: one stack, the test plays the peer segment by segment
 * (see test/helpers/script.ts for the line syntax).
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/** Passive open through to ESTABLISHED: peer MSS 1460 with window scaling (theirs 7, ours 7). */
function handshake(h: ScriptHost, peerOpts = '<mss 1460,wscale 7>', ourOpts = '<mss 1460,wscale 7>') {
  return script(h)
    .recv(`S 0:0(0) win 65535 ${peerOpts}`)
    .send(`S. 0:0(0) ack 1 win 65535 ${ourOpts}`)
    .recv('. 1:1(0) ack 1 win 512')
    .state('ESTABLISHED');
}

describe('segments for nobody (RFC 9293 §3.10.7.1)', () => {
  it('a segment without ACK to a closed port gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>', async () => {
    const h = scriptHost();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('R. 0:0(0) ack 1 win 0')
      .recv('P 1:101(100)') // data counts in SEG.LEN
      .send('R. 0:0(0) ack 101 win 0')
      .recv('F 101:101(0)') // so does a FIN
      .send('R. 0:0(0) ack 102 win 0')
      .recv('SF 0:10(10)') // SYN + data + FIN
      .send('R. 0:0(0) ack 12 win 0');
    expect(h.stack.stats()['tcp.drop.no-connection']).toBe(4);
    expect(h.stack.connections()).toEqual([]);
  });

  it('a segment with ACK to a closed port gets <SEQ=SEG.ACK><CTL=RST>', async () => {
    const h = scriptHost();
    await script(h)
      .recv('. 1:1(0) ack 5000')
      .send('R 5000:5000(0) win 0')
      .recv('P. 1:11(10) ack 77777')
      .send('R 77777:77777(0) win 0');
  });

  it('a RST to a closed port is never answered', async () => {
    const h = scriptHost();
    await script(h).recv('R 1:1(0)').recv('R. 1:1(0) ack 9').quiet(1000);
    expect(h.stack.stats()['tcp.rst.out']).toBeUndefined();
  });
});

describe('LISTEN (RFC 9293 §3.10.7.2)', () => {
  it('an ACK to a listener gets <SEQ=SEG.ACK><CTL=RST> and creates no connection', async () => {
    const h = scriptHost();
    h.listen();
    await script(h).recv('. 1:1(0) ack 4242').send('R 4242:4242(0) win 0').state('CLOSED');
    expect(h.stack.connections()).toEqual([]);
  });

  it('a RST to a listener is ignored, and so is a segment with neither SYN nor ACK', async () => {
    const h = scriptHost();
    h.listen();
    await script(h).recv('R 1:1(0)').recv('P 1:11(10)').quiet(1000).state('CLOSED');
  });

  it('SYN-ACK carries our MSS, and window scaling only when the peer offered it (RFC 7323 §2.2)', async () => {
    const h = scriptHost({ tcp: { wscale: 7 } });
    h.listen();
    await handshake(h, '<mss 1000,wscale 5>', '<mss 1460,wscale 7>');
    expect(h.conn!.sndMss).toBe(1000);
    expect(h.conn!.sndWscale).toBe(5);
    expect(h.conn!.sndWnd).toBe(512 << 5);

    const h2 = scriptHost({ seed: 2 });
    h2.listen();
    await handshake(h2, '<mss 1200>', '<mss 1460>');
    expect(h2.conn!.sndWscale).toBe(0);
    expect(h2.conn!.sndWnd).toBe(512);
  });

  it('the MSS we announce follows the MTU', async () => {
    const h = scriptHost({ mtu: 9000 });
    h.listen();
    await handshake(h, '<mss 8960,wscale 7>', '<mss 8960,wscale 7>');
  });
});

describe('RST and SYN in a synchronized state (RFC 5961)', () => {
  it('a RST in the window but not at RCV.NXT gets a challenge ACK and changes nothing (§3.2)', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .recv('P. 1:101(100) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 101')
      .recv('R 150:150(0)') // in the window, 49 bytes past RCV.NXT
      .send('. 1:1(0) ack 101')
      .recv('R. 1000:1000(0) ack 1')
      .send('. 1:1(0) ack 101')
      .state('ESTABLISHED');
    expect(h.stack.stats()['tcp.rst.challenged']).toBe(2);
    expect(h.log.events).toEqual([]);
  });

  it('a RST outside the window is dropped silently', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h).recv('R 5000000:5000000(0)').recv('R 0:0(0)').quiet(100).state('ESTABLISHED');
  });

  it('a RST exactly at RCV.NXT closes the connection: ECONNRESET, CLOSED, no answer', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .recv('P. 1:101(100) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 101')
      .recv('R 101:101(0)')
      .state('CLOSED')
      .quiet(10_000);
    expect(h.log.events).toContain('error ECONNRESET');
    expect(h.received).toEqual(h.peerBytes(1, 101));
    expect(h.stack.connections()).toEqual([]);
    expect(h.stack.tcp.nextDeadline()).toBe(Infinity);
  });

  it('a SYN in ESTABLISHED gets a challenge ACK, whatever its sequence number (§4)', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .recv('S 0:0(0) win 65535 <mss 1460>') // an old duplicate of the first SYN
      .send('. 1:1(0) ack 1')
      .recv('S 500:500(0) win 65535 <mss 1460>') // in the window
      .send('. 1:1(0) ack 1')
      .state('ESTABLISHED');
    // The first is outside the window (plain ACK, §3.10.7.4 first), the second is challenged.
    expect(h.stack.stats()['tcp.drop.out-of-window']).toBe(1);
    expect(h.stack.stats()['tcp.syn.challenged']).toBe(1);
  });

  it('challenge ACKs are rate limited (§7)', async () => {
    const h = scriptHost();
    h.listen();
    const s = handshake(h);
    // The layer allows 1000 per second: an attacker's burst of 1100 gets 1000 answers.
    for (let i = 0; i < 1100; i++) s.recv(`R ${10 + i}:${10 + i}(0)`);
    await s.do((host) => {
      host.consumed = host.out.length; // not interested in each ACK, just the count
    });
    const st = h.stack.stats();
    expect(st['tcp.challenge-ack.out']).toBe(1000);
    expect(st['tcp.challenge-ack.limited']).toBe(100);
    expect(h.state).toBe('ESTABLISHED');
  });
});

describe('receiving data (RFC 9293 §3.10.7.4, RFC 5681 §4.2, RFC 1122 §4.2.3.2)', () => {
  it('data beyond the window gets a bare ACK and is not delivered', async () => {
    const h = scriptHost();
    h.listen();
    // Our window is 8192 << 7 = 1 MiB from RCV.NXT = 1.
    await handshake(h)
      .recv('P. 1048577:1048677(100) ack 1 win 512')
      .send('. 1:1(0) ack 1')
      .recv('P. 2000000:2000100(100) ack 1 win 512')
      .send('. 1:1(0) ack 1')
      .quiet(1000);
    expect(h.received.length).toBe(0);
    expect(h.stack.stats()['tcp.drop.out-of-window']).toBe(2);
  });

  it('an out-of-order segment gets an immediate duplicate ACK; filling the hole gets an immediate cumulative ACK', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .recv('P. 1001:2001(1000) ack 1 win 512')
      .send('. 1:1(0) ack 1')
      .recv('P. 3001:4001(1000) ack 1 win 512')
      .send('. 1:1(0) ack 1')
      .do((h) => expect(h.received.length).toBe(0))
      .recv('. 1:1001(1000) ack 1 win 512') // fills the first hole: ACK at once, up to the next hole
      .send('. 1:1(0) ack 2001')
      .recv('. 2001:3001(1000) ack 1 win 512')
      .send('. 1:1(0) ack 4001')
      .quiet(1000);
    expect(h.received).toEqual(h.peerBytes(1, 4001));
  });

  it('an old duplicate segment is acknowledged and not delivered twice', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .recv('P. 1:501(500) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 501')
      .recv('P. 1:501(500) ack 1 win 512') // the same segment again
      .send('. 1:1(0) ack 501')
      .recv('P. 301:801(500) ack 1 win 512') // overlaps: only 501..801 is new
      .after(40)
      .send('. 1:1(0) ack 801');
    expect(h.received).toEqual(h.peerBytes(1, 801));
  });

  it('ACKs are delayed by at most delayedAckMs, but every second full-sized segment is acknowledged at once', async () => {
    const h = scriptHost({ tcp: { delayedAckMs: 40 } });
    h.listen();
    await handshake(h)
      .recv('P. 1:101(100) ack 1 win 512')
      .quiet(39)
      .after(1)
      .send('. 1:1(0) ack 101')
      .recv('. 101:1561(1460) ack 1 win 512')
      .quiet(10)
      .recv('. 1561:3021(1460) ack 1 win 512') // second full segment: ACK now
      .send('. 1:1(0) ack 3021')
      .recv('. 3021:4481(1460) ack 1 win 512')
      .recv('. 4481:5941(1460) ack 1 win 512')
      .send('. 1:1(0) ack 5941')
      .quiet(1000);
    expect(h.received).toEqual(h.peerBytes(1, 5941));
  });

  it('an ACK owed for received data rides on the reply', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.on('data', () => s.write('pong')) });
    await handshake(h)
      .recv('P. 1:5(4) ack 1 win 512')
      .send('P. 1:5(4) ack 5')
      .recv('. 5:5(0) ack 5 win 512')
      .quiet(1000);
  });
});
