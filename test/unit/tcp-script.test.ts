/**
 * RFC rules stated as timelines: one stack, the test plays the peer segment by segment
 * (see test/helpers/script.ts for the line syntax). Timelines that only check the wire live in
 * the packetdrill corpus (test/packetdrill/**); the ones here also check what a script cannot
 * see: states, counters, socket events, the stack's tables and settings outside the profile.
 */
import { describe, expect, it } from 'vitest';
import { parseLine, passiveOpen, script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/**
 * Passive open: by default the peer announces MSS 1460 and window scale 7, and its final ACK
 * offers 512 << 7 = 64 KiB.
 */
function handshake(h: ScriptHost, peerOpts = '<mss 1460,wscale 7>', ourOpts = '<mss 1460,wscale 7>', ackWin = 512) {
  return passiveOpen(h, { peerOpts, synAck: `S. 0:0(0) ack 1 win 65535 ${ourOpts}`, ackWin });
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
});

describe('LISTEN (RFC 9293 §3.10.7.2)', () => {
  it('an ACK to a listener gets <SEQ=SEG.ACK><CTL=RST> and creates no connection', async () => {
    const h = scriptHost();
    h.listen();
    await script(h).recv('. 1:1(0) ack 4242').send('R 4242:4242(0) win 0').state('CLOSED');
    expect(h.stack.connections()).toEqual([]);
  });

  it('SYN-ACK carries our MSS, and window scaling only when the peer offered it (RFC 7323 §2.2)', async () => {
    const h = scriptHost({ tcp: { wscale: 7 } });
    h.listen();
    await handshake(h, '<mss 1000,wscale 5>', '<mss 1460,wscale 7>').state('ESTABLISHED');
    expect(h.conn!.snd.mss).toBe(1000);
    expect(h.conn!.snd.wscale).toBe(5);
    expect(h.conn!.snd.wnd).toBe(512 << 5);

    const h2 = scriptHost({ seed: 2 });
    h2.listen();
    await handshake(h2, '<mss 1200>', '<mss 1460>').state('ESTABLISHED');
    expect(h2.conn!.snd.wscale).toBe(0);
    expect(h2.conn!.snd.wnd).toBe(512);
  });
});

describe('SYN-RECEIVED after a passive open', () => {
  it('the SYN-ACK is retransmitted with backoff, then the half-open connection is dropped (synRetries)', async () => {
    const h = scriptHost({ tcp: { synRetries: 2, initialRto: 1000 } });
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .quiet(999)
      .after(1)
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .quiet(1999)
      .after(1)
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .quiet(3999)
      .after(1)
      .state('CLOSED')
      .recv('. 1:1(0) ack 1 win 512') // too late: the listener answers for nobody
      .send('R 1:1(0) win 0');
    expect(h.sockets).toEqual([]);
    expect(h.stack.stats()['tcp.timeout']).toBe(1);
  });

  it('a retransmitted SYN gets the SYN-ACK again at once (our SYN-ACK was lost), as Linux does', async () => {
    const h = scriptHost();
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .after(300)
      .recv('S 0:0(0) win 65535 <mss 1460>') // the peer never saw our SYN-ACK
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .recv('. 1:1(0) ack 1 win 512')
      .state('ESTABLISHED');
    expect(h.stack.stats()['tcp.syn.retransmitted-in']).toBe(1);
  });

  it('an exact RST returns to LISTEN silently; the listener still accepts the next SYN', async () => {
    const h = scriptHost();
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .recv('R 1:1(0)')
      .state('CLOSED')
      .quiet(5000)
      .recv('S 1000:1000(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1001 win 65535 <mss 1460>')
      .recv('. 1001:1001(0) ack 1 win 512')
      .state('ESTABLISHED');
    expect(h.sockets.length).toBe(1);
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
      .after(500) // one answer to an invalid segment per 500 ms (see 'rate-limited replies')
      .recv('R. 1000:1000(0) ack 1')
      .send('. 1:1(0) ack 101')
      .state('ESTABLISHED');
    expect(h.stack.stats()['tcp.rst.challenged']).toBe(2);
    expect(h.log.events).toEqual([]);
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
      .after(500)
      .recv('S 500:500(0) win 65535 <mss 1460>') // in the window
      .send('. 1:1(0) ack 1')
      .state('ESTABLISHED');
    // The first is outside the window (plain ACK, §3.10.7.4 first), the second is challenged.
    expect(h.stack.stats()['tcp.drop.out-of-window']).toBe(1);
    expect(h.stack.stats()['tcp.syn.challenged']).toBe(1);
  });

  it('[limits.challenge-ack-budget] challenge ACKs are rate limited for the whole stack by a budget drawn at random each second (§7, §10)', async () => {
    // Without the per-connection limit, to see the stack-wide one: 1000 per second, ±50% at random.
    const h = scriptHost({ limits: { invalidReplyIntervalMs: 0 } });
    h.listen();
    const s = handshake(h);
    const perSecond: number[] = [];
    for (let second = 0; second < 3; second++) {
      for (let i = 0; i < 2000; i++) s.recv(`R ${10 + i}:${10 + i}(0)`);
      s.do((host) => {
        perSecond.push(host.stack.stats()['tcp.challenge-ack.out']! - perSecond.reduce((a, b) => a + b, 0));
        host.consumed = host.out.length; // not interested in each ACK, just the count
      }).after(1000);
    }
    await s;
    const st = h.stack.stats();
    for (const n of perSecond) {
      expect(n).toBeGreaterThanOrEqual(500);
      expect(n).toBeLessThanOrEqual(1501);
    }
    // A fixed count would let an off-path attacker count them (CVE-2016-5696): it differs each second.
    expect(new Set(perSecond).size).toBe(3);
    expect(st['tcp.challenge-ack.limited']).toBe(6000 - st['tcp.challenge-ack.out']!);
    expect(h.state).toBe('ESTABLISHED');
  });
});

describe('rate-limited replies (Linux tcp_invalid_ratelimit, RFC 5961 §7)', () => {
  const bad: Array<[string, string]> = [
    ['out-of-window segments', '. 5000000:5000000(0) ack 1'],
    ['ACKs of data never sent', '. 1:1(0) ack 100000'],
    ['in-window RSTs not at RCV.NXT', 'R 50:50(0)'],
  ];
  it('[limits.invalid-reply] 1000 out-of-window segments, ACKs of unsent data or in-window RSTs, 2.7 ms apart, get one answer per 500 ms: 6, not 1000', async () => {
    for (const [what, line] of bad) {
      const h = scriptHost();
      h.listen();
      const s = handshake(h);
      for (let i = 0; i < 1000; i++) s.recv(line).after(2.7);
      let answers = 0;
      await s.do((host) => {
        answers = host.unread.length;
        host.consumed = host.out.length;
      });
      expect(answers, what).toBe(6); // at 0, 502.2, 1004.4, 1506.6, 2008.8, 2511 ms
      expect(h.stack.stats()['tcp.invalid-reply.limited'], what).toBe(994);
      expect(h.state).toBe('ESTABLISHED');
    }
  });

  it('[limits.invalid-reply-data] out-of-window data is always answered: its sender needs the duplicate ACK', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .recv('P. 1:101(100) ack 1')
      .after(40)
      .send('. 1:1(0) ack 101')
      .recv('P. 1:101(100) ack 1') // a retransmission of data we have
      .send('. 1:1(0) ack 101')
      .recv('P. 1:101(100) ack 1')
      .send('. 1:1(0) ack 101');
  });
});

describe('segments to nobody', () => {
  it('[limits.rst-rate] get RSTs at most rstPerSecond', async () => {
    const h = scriptHost({ limits: { rstPerSecond: 10 } });
    const s = script(h);
    for (let i = 0; i < 30; i++) s.recv('S 0:0(0) win 65535 <mss 1460>');
    await s.do((host) => {
      expect(host.unread.map((c) => host.describe(c))).toEqual(Array(10).fill('R. 0:0(0) ack 1 win 0'));
      host.consumed = host.out.length;
    });
    expect(h.stack.stats()['tcp.rst.limited']).toBe(20);
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

  it('a FIN that arrives out of order gets a duplicate ACK, ends the sequence space, and counts once the gap fills', async () => {
    const h = scriptHost();
    h.listen({ allowHalfOpen: true });
    await handshake(h)
      .recv('F. 101:101(0) ack 1 win 512') // the FIN before the data it follows
      .send('. 1:1(0) ack 1')
      .recv('P. 101:201(100) ack 1 win 512') // "data" past the FIN: there is no such sequence space
      .recv('P. 1:101(100) ack 1 win 512') // the gap: data, then the remembered FIN
      .send('. 1:1(0) ack 102')
      .state('CLOSE-WAIT');
    expect(h.received).toEqual(h.peerBytes(1, 101));
    expect(h.stack.stats()['tcp.drop.beyond-fin']).toBe(1);
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
});

describe('TIME-WAIT (RFC 9293 §3.10.7.4, RFC 6191)', () => {
  /** The stack closes first: FIN-WAIT-1, FIN-WAIT-2, then TIME-WAIT on the peer's FIN. */
  function toTimeWait(h: ScriptHost) {
    // The application closes the first connection it accepts at once, and keeps later ones.
    h.listen({ onConnection: (s) => h.sockets.length === 1 && s.end() });
    return handshake(h)
      .send('F. 1:1(0) ack 1')
      .state('FIN-WAIT-1')
      .recv('. 1:1(0) ack 2 win 512')
      .state('FIN-WAIT-2')
      .recv('F. 1:1(0) ack 2 win 512')
      .send('. 2:2(0) ack 2')
      .state('TIME-WAIT');
  }

  it('lasts exactly 2*MSL', async () => {
    const h = scriptHost({ tcp: { msl: 1000 } });
    await toTimeWait(h).after(1999).state('TIME-WAIT').after(1).state('CLOSED');
    expect(h.stack.tcp.nextDeadline()).toBe(Infinity);
  });

  it('a new SYN beyond the old receive sequence reopens the 4-tuple with a higher ISN (RFC 6191)', async () => {
    const h = scriptHost({ tcp: { msl: 30_000 } });
    await toTimeWait(h)
      .after(100)
      .recv('S 100000:100000(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 100001 win 65535 <mss 1460,wscale 7>') // relative to the NEW ISN
      .recv('. 100001:100001(0) ack 1 win 512')
      .state('ESTABLISHED')
      .recv('P. 100001:100101(100) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 100101');
    expect(h.ourIsns.length).toBe(2);
    // The new ISN lies beyond everything the old incarnation sent (RFC 6191 §2 / RFC 1122 §4.2.2.13).
    const advance = (h.ourIsns[1]! - h.ourIsns[0]!) >>> 0;
    expect(advance).toBeGreaterThan(2);
    expect(advance).toBeLessThan(2 ** 31);
    expect(h.sockets.length).toBe(2);
    expect(h.received).toEqual(h.peerBytes(100001, 100101));
    expect(h.stack.stats()['tcp.time-wait.reused']).toBe(1);
  });

  it('an old SYN (not beyond RCV.NXT) in TIME-WAIT gets an ACK and does not reopen', async () => {
    const h = scriptHost({ tcp: { msl: 1000 } });
    await toTimeWait(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('. 2:2(0) ack 2')
      .state('TIME-WAIT');
    expect(h.ourIsns.length).toBe(1);
  });
});

describe('flow control', () => {
  it('a reader that stops reading closes the window; probes are answered; reading again sends a window update', async () => {
    // Small buffers and no window scaling, so the numbers are easy to follow.
    const h = scriptHost({ tcp: { rcvBuf: 4096 } });
    let paused = true;
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() });
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 4096 <mss 1460>')
      .recv('. 1:1(0) ack 1 win 65535')
      .recv('. 1:1001(1000) ack 1 win 65535') // the paused socket's buffer takes this one
      .recv('. 1001:2001(1000) ack 1 win 65535') // the rest waits in the connection
      .recv('. 2001:3001(1000) ack 1 win 65535')
      .send('. 1:1(0) ack 3001 win 1096') // 3000 bytes unacknowledged: ACK now; the window shrinks
      .recv('. 3001:4001(1000) ack 1 win 65535')
      .recv('. 4001:4097(96) ack 1 win 65535')
      .after(40)
      .send('. 1:1(0) ack 4097 win 0') // full
      .recv('. 4097:4098(1) ack 1 win 65535') // a zero-window probe
      .send('. 1:1(0) ack 4097 win 0')
      .after(5000)
      .recv('. 4097:4098(1) ack 1 win 65535')
      .send('. 1:1(0) ack 4097 win 0')
      .do((h) => {
        paused = false;
        h.socket.resume();
      })
      .send('. 1:1(0) ack 4097 win 4096') // the window update
      .recv('. 4097:5097(1000) ack 1 win 65535')
      .after(40)
      // Read at once, but the right edge moves only by at least one MSS (receiver SWS avoidance, RFC 1122 §4.2.3.3).
      .send('. 1:1(0) ack 5097 win 3096');
    expect(paused).toBe(false);
    expect(h.received).toEqual(h.peerBytes(1, 5097));
  });

  it('a window scale too coarse for the receive buffer is reduced, so a closed window can open again', async () => {
    // With a 4 KiB buffer, a shift of 14 makes one window unit 16 KiB: once closed, the window
    // would round down to zero forever, however much the reader drained.
    const h = scriptHost({ tcp: { rcvBuf: 4096, wscale: 14 } });
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() });
    const s = script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 4096 <*>')
      .recv('. 1:1(0) ack 1 win 512');
    // The peer sends 17 kB while the reader is paused; whatever does not fit is refused.
    for (let at = 1; at < 17_001; at += 1000) s.recv(`. ${at}:${at + 1000}(1000) ack 1 win 512`);
    await s
      .after(200)
      .do((h) => {
        expect(h.stack.connections()[0]!.rcvWnd).toBe(0); // closed
        h.consumed = h.out.length; // (the ACKs on the way there are not the point)
        h.socket.resume();
      })
      // The window update. 5048 bytes were taken: 1000 by the socket, 4048 by the 4 KiB buffer.
      .send('. 1:1(0) ack 5049 <*>');
    const update = h.out.at(-1)!.seg!;
    const shift = h.out[0]!.seg!.options.wscale!;
    // One unit of window stays within the receiver-SWS step min(rcvBuf/2, MSS) = 1460: 2^10.
    expect(shift).toBe(10);
    expect(update.window << shift).toBe(4096);
    expect(h.received).toEqual(h.peerBytes(1, 5049));
  });

  it('a peer sending small segments cannot creep past the receive buffer (bounded memory)', async () => {
    // Rounding the scaled window up (so its right edge never moves back) must not compound: a peer
    // that sends 100 bytes per ACK would otherwise see the edge move on by 100 bytes every time.
    const h = scriptHost({ tcp: { rcvBuf: 4096 } }); // shift 7: one unit of window is 128 bytes
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() });
    const s = script(h).recv('S 0:0(0) win 65535 <mss 1460,wscale 7>').send('S. 0:0(0) ack 1 win 4096 <mss 1460,wscale 7>');
    s.recv('. 1:1(0) ack 1 win 512');
    for (let at = 1; at < 10_001; at += 100) s.recv(`. ${at}:${at + 100}(100) ack 1 win 512`).after(40);
    await s.do((h) => {
      h.consumed = h.out.length; // (the ACKs are checked below)
    });
    const conn = h.conn!;
    // The first 100 bytes sit in the paused socket; the buffer holds at most 4096 + one unit.
    expect(conn.rcvBuffered).toBeLessThan(4096 + 128);
    expect(h.stack.connections()[0]!.rcvWnd).toBe(0);
    expect(h.out.at(-1)!.seg!.window).toBe(0);
  });
});

describe('active open (RFC 9293 §3.10.7.3)', () => {
  it('SYN, SYN-ACK, ACK: the socket connects', async () => {
    const h = scriptHost();
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .state('SYN-SENT')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1400,wscale 2>')
      .send('. 1:1(0) ack 1')
      .state('ESTABLISHED');
    expect(h.log.events).toEqual(['connect']);
    expect(h.conn!.snd.mss).toBe(1400);
  });

  it('the SYN is retransmitted with exponential backoff, then ETIMEDOUT after synRetries', async () => {
    const h = scriptHost({ tcp: { synRetries: 2, initialRto: 1000 } });
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .quiet(999)
      .after(1)
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 7>')
      .quiet(1999)
      .after(1)
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 3000 ecr 0,wscale 7>')
      .quiet(3999)
      .after(1)
      .state('CLOSED')
      .quiet(60_000);
    expect(h.log.events).toEqual(['error ETIMEDOUT', 'close']);
    expect(h.stack.tcp.nextDeadline()).toBe(Infinity);
  });

  it('RST with an acceptable ACK refuses the connection; RST with a bad ACK is ignored', async () => {
    const h = scriptHost();
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .recv('R. 0:0(0) ack 5') // not our SYN's ACK: ignored
      .state('SYN-SENT')
      .recv('R. 0:0(0) ack 1')
      .state('CLOSED')
      .quiet(10_000);
    expect(h.log.events).toEqual(['error ECONNREFUSED', 'close']);
  });

  it('simultaneous open: SYN crosses SYN, both answer SYN-ACK (§3.5 figure 8)', async () => {
    const h = scriptHost();
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .state('SYN-RECEIVED')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>') // its SYN is old, its ACK is new
      .state('ESTABLISHED')
      .quiet(1000); // each SYN-ACK acknowledged the other SYN: nothing more to say
    expect(h.log.events).toEqual(['connect']);
  });
});

describe('ICMP errors about our segments (RFC 1122 §4.2.3.9, RFC 1191, RFC 5927)', () => {
  const UNREACHABLE = 3;
  const [HOST, PROTOCOL, PORT, FRAG_NEEDED] = [1, 2, 3, 4];

  it('[icmp.refused-syn-sent] port or protocol unreachable for our SYN: ECONNREFUSED or ENOPROTOOPT at once, no SYN retransmission (as Linux)', async () => {
    for (const [code, errno] of [[PORT, 'ECONNREFUSED'], [PROTOCOL, 'ENOPROTOOPT']] as const) {
      const h = scriptHost();
      await script(h)
        .do((h) => h.connect())
        .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
        .icmp(UNREACHABLE, code, { seq: 0 })
        .state('CLOSED')
        .quiet(60_000);
      expect(h.log.events).toEqual([`error ${errno}`, 'close']);
      expect(h.stack.stats()['tcp.icmp.refused']).toBe(1);
    }
  });

  it('[icmp.soft-error] host unreachable in SYN-SENT is a soft error: the SYN is retried as usual and the error is reported when the connection times out', async () => {
    const h = scriptHost({ tcp: { synRetries: 1, initialRto: 1000 } });
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .icmp(UNREACHABLE, HOST, { seq: 0 })
      .state('SYN-SENT')
      .quiet(999)
      .after(1)
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 7>')
      .quiet(1999)
      .after(1)
      .state('CLOSED');
    expect(h.log.events).toEqual(['error EHOSTUNREACH', 'close']);
  });

  it('[icmp.synchronized-soft] on an established connection even port unreachable is only a soft error (RFC 5461); an ACK of new data clears it', async () => {
    const h = scriptHost({ tcp: { maxRetries: 1 } });
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(100, 1)) });
    await handshake(h)
      .send('P. 1:101(100) ack 1')
      .icmp(UNREACHABLE, PORT, { seq: 1 })
      .state('ESTABLISHED')
      .recv('. 1:1(0) ack 101 win 512') // the peer is there after all
      .do((h) => h.socket.write(Buffer.alloc(100, 2)))
      .send('P. 101:201(100) ack 1')
      .after(200)
      .send('P. 101:201(100) ack 1')
      .after(400)
      .state('CLOSED');
    expect(h.log.events).toContain('error ETIMEDOUT');
    const h2 = scriptHost({ tcp: { maxRetries: 1 } });
    h2.listen({ onConnection: (s) => s.write(Buffer.alloc(100, 1)) });
    await handshake(h2)
      .send('P. 1:101(100) ack 1')
      .icmp(UNREACHABLE, PORT, { seq: 1 })
      .after(200)
      .send('P. 1:101(100) ack 1')
      .after(400)
      .state('CLOSED');
    expect(h2.log.events).toContain('error ECONNREFUSED');
  });

  it('[icmp.quote-checked] an error is believed only for a connection we hold and a quoted sequence number in SND.UNA..SND.NXT (RFC 5927 §4.1)', async () => {
    const h = scriptHost();
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .icmp(UNREACHABLE, PORT, { seq: 1 }) // past SND.NXT
      .icmp(UNREACHABLE, PORT, { seq: -1 }) // before SND.UNA
      .icmp(UNREACHABLE, PORT, { seq: 0, srcPort: 1234 }) // not our connection
      .state('SYN-SENT');
    const s = h.stack.stats();
    expect([s['tcp.icmp.out-of-window'], s['tcp.icmp.no-connection'], s['tcp.icmp.refused'] ?? 0]).toEqual([2, 1, 0]);
  });

  it('[icmp.syn-ack-refused] port unreachable for our SYN-ACK: the listener forgets the attempt and accepts the next SYN', async () => {
    const h = scriptHost();
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 <*>')
      .icmp(UNREACHABLE, PORT, { seq: 0 })
      .state('CLOSED')
      .quiet(5000);
    await handshake(h).state('ESTABLISHED');
  });

  it('[icmp.pmtu-lowers-mss] fragmentation needed lowers the MSS to the next-hop MTU - 40 and resends from SND.UNA at once, in smaller segments (RFC 1191)', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(3000, 1)) });
    await handshake(h)
      .send('. 1:1461(1460) ack 1')
      .send('. 1461:2921(1460) ack 1')
      .send('P. 2921:3001(80) ack 1')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 1, len: 1500, mtu: 1000 })
      .send('. 1:961(960) ack 1')
      .send('. 961:1921(960) ack 1')
      .send('. 1921:2881(960) ack 1')
      .send('P. 2881:3001(120) ack 1')
      .recv('. 1:1(0) ack 3001 win 512')
      .do((h) => h.socket.write(Buffer.alloc(1000, 2)))
      .send('. 3001:3961(960) ack 1') // new data too
      .send('P. 3961:4001(40) ack 1')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 3001, len: 1000, mtu: 1200 }) // larger than the path MTU we know: ignored
      .quiet(100);
    expect(h.conn!.snd.mss).toBe(960);
    expect(h.stack.stats()['tcp.pmtu.ignored']).toBe(1);
  });

  it('[icmp.pmtu-checked] a fragmentation-needed message quoting data not in flight cannot shrink the connection', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(100, 1)) });
    await handshake(h)
      .send('P. 1:101(100) ack 1')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 101, mtu: 576 })
      .recv('. 1:1(0) ack 101 win 512')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 1, mtu: 576 }) // acknowledged already
      .quiet(1000);
    expect(h.conn!.snd.mss).toBe(1460);
    expect(h.stack.stats()['tcp.icmp.out-of-window']).toBe(2);
  });

  it('[icmp.pmtu-floor] a next-hop MTU below 68 counts as 68: segments of 28 bytes, never smaller (RFC 791)', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(60, 1)) });
    await handshake(h)
      .send('P. 1:61(60) ack 1')
      .icmp(UNREACHABLE, FRAG_NEEDED, { seq: 1, len: 100, mtu: 20 })
      .send('. 1:29(28) ack 1')
      .send('. 29:57(28) ack 1')
      .send('P. 57:61(4) ack 1');
    expect(h.conn!.snd.mss).toBe(28);
  });
});

describe('retransmission (RFC 6298, RFC 5681)', () => {
  it('unacknowledged data is retransmitted at the RTO, doubling each time, then ETIMEDOUT after maxRetries', async () => {
    const h = scriptHost({ tcp: { maxRetries: 3, minRto: 200 } });
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(100, 1)) });
    // The handshake's RTT sample is 0 ms, so the RTO is its 200 ms floor.
    await handshake(h)
      .send('P. 1:101(100) ack 1')
      .quiet(199)
      .after(1)
      .send('P. 1:101(100) ack 1')
      .quiet(399)
      .after(1)
      .send('P. 1:101(100) ack 1')
      .quiet(799)
      .after(1)
      .send('P. 1:101(100) ack 1')
      .quiet(1599)
      .after(1)
      .state('CLOSED')
      .quiet(60_000);
    expect(h.log.events).toContain('error ETIMEDOUT');
    expect(h.stack.stats()['tcp.rto']).toBe(3);
  });

  it('after a timeout, a bare ACK still carries the highest sequence number sent, so a peer that has the data accepts it', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(2920, 1)) });
    await handshake(h)
      .send('. 1:1461(1460) ack 1')
      .send('P. 1461:2921(1460) ack 1')
      // The peer got both segments, but its ACK was lost: the timer goes back to SND.UNA.
      .after(200)
      .send('. 1:1461(1460) ack 1')
      .recv('P. 1:101(100) ack 1 win 512') // the peer's data, acknowledging nothing new yet
      .after(40)
      // RCV.NXT at the peer is 2921: an ACK numbered 1461 would be "old" there and dropped
      // unread (RFC 9293 §3.10.7.4 first), and with it our acknowledgment of its data.
      .send('. 2921:2921(0) ack 101')
      .recv('. 101:101(0) ack 2921 win 512')
      .quiet(5000);
    expect(h.received).toEqual(h.peerBytes(1, 101));
  });

  it('three duplicate ACKs trigger a fast retransmit of the first unacknowledged segment', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(5 * 1460, 1)) });
    await handshake(h)
      .send('. 1:1461(1460) ack 1')
      .send('. 1461:2921(1460) ack 1')
      .send('. 2921:4381(1460) ack 1')
      .send('. 4381:5841(1460) ack 1')
      .send('P. 5841:7301(1460) ack 1')
      .recv('. 1:1(0) ack 1461 win 512') // the second segment was lost
      .recv('. 1:1(0) ack 1461 win 512')
      .recv('. 1:1(0) ack 1461 win 512')
      .quiet()
      .recv('. 1:1(0) ack 1461 win 512') // the third duplicate
      .send('. 1461:2921(1460) ack 1')
      .recv('. 1:1(0) ack 7301 win 512')
      .quiet(5000);
    expect(h.stack.stats()['tcp.fast-retransmit']).toBe(1);
  });

  it('a zero window is probed with one byte, backing off, until it opens (RFC 9293 §3.8.6.1)', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(3000, 1)) });
    await handshake(h, '<mss 1460,wscale 7>', '<mss 1460,wscale 7>', 0)
      .quiet(199)
      .after(1)
      .send('. 1:2(1) ack 1') // probe after one RTO
      .recv('. 1:1(0) ack 1 win 0')
      .quiet(399)
      .after(1)
      .send('. 1:2(1) ack 1') // then twice that
      .recv('. 1:1(0) ack 2 win 0') // the peer took the probe byte but the window is still closed
      .quiet(799)
      .after(1)
      .send('. 2:3(1) ack 1')
      .recv('. 1:1(0) ack 2 win 512') // open
      .send('. 2:1462(1460) ack 1')
      .send('. 1462:2922(1460) ack 1')
      .send('P. 2922:3001(79) ack 1');
    expect(h.stack.stats()['tcp.persist.probe']).toBe(3);
  });
});

describe('closing', () => {
  it('the peer closes first: CLOSE-WAIT, then our FIN from LAST-ACK, CLOSED on its ACK', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .recv('P. 1:11(10) ack 1 win 512')
      .recv('F. 11:11(0) ack 1 win 512')
      .send('. 1:1(0) ack 12') // a FIN is acknowledged at once
      // The socket does not allow half-open (net.Socket's default), so it ends on 'end'.
      .send('F. 1:1(0) ack 12')
      .state('LAST-ACK')
      .recv('. 12:12(0) ack 2 win 512')
      .state('CLOSED')
      .quiet(10_000);
    expect(h.received).toEqual(h.peerBytes(1, 11));
    expect(h.log.events).toEqual(['end', 'finish', 'close']);
  });

  it('half-close: with allowHalfOpen the application keeps sending after the peer FIN', async () => {
    const h = scriptHost();
    h.listen({ allowHalfOpen: true });
    await handshake(h)
      .recv('F. 1:1(0) ack 1 win 512')
      .send('. 1:1(0) ack 2')
      .state('CLOSE-WAIT')
      .do((h) => h.socket.write(Buffer.alloc(10, 1)))
      .send('P. 1:11(10) ack 2')
      .recv('. 2:2(0) ack 11 win 512')
      .do((h) => h.socket.end())
      .send('F. 11:11(0) ack 2')
      .state('LAST-ACK')
      .recv('. 2:2(0) ack 12 win 512')
      .state('CLOSED');
  });

  it('simultaneous close: FIN crosses FIN, CLOSING, then TIME-WAIT', async () => {
    const h = scriptHost({ tcp: { msl: 500 } });
    h.listen();
    await handshake(h)
      .do((h) => h.socket.end())
      .send('F. 1:1(0) ack 1')
      .recv('F. 1:1(0) ack 1 win 512') // sent before our FIN arrived
      .send('. 2:2(0) ack 2')
      .state('CLOSING')
      .recv('. 2:2(0) ack 2 win 512')
      .state('TIME-WAIT')
      .after(1000)
      .state('CLOSED');
  });

  it('data for an application that has closed (orphaned) is answered with RST (RFC 1122 §4.2.2.13)', async () => {
    const h = scriptHost();
    h.listen();
    await handshake(h)
      .do((h) => h.socket.end())
      .send('F. 1:1(0) ack 1')
      .recv('. 1:1(0) ack 2 win 512')
      .state('FIN-WAIT-2')
      .do((h) => h.socket.destroy())
      .recv('P. 1:11(10) ack 2 win 512')
      .send('R. 2:2(0) ack 1') // <SEQ=SND.NXT>, and the data is not acknowledged
      .state('CLOSED');
  });
});

describe('keepalive (RFC 1122 §4.2.3.6) and odd application calls', () => {
  it('an idle connection is probed with <SEQ=SND.NXT-1>; an answer keeps it; silence ends it with ETIMEDOUT', async () => {
    const h = scriptHost({ tcp: { keepaliveInterval: 1000, keepaliveCount: 3 } });
    h.listen({ onConnection: (s) => s.setKeepAlive(true, 5000) });
    await handshake(h)
      .quiet(4999)
      .after(1)
      .send('. 0:0(0) ack 1') // one below SND.NXT: the peer must answer with an ACK
      .recv('. 1:1(0) ack 1 win 512')
      .quiet(4999) // the answer restarted the idle time
      .after(1)
      .send('. 0:0(0) ack 1')
      .after(1000)
      .send('. 0:0(0) ack 1')
      .after(1000)
      .send('. 0:0(0) ack 1')
      .after(1000)
      .state('CLOSED');
    expect(h.log.events).toContain('error ETIMEDOUT');
    expect(h.stack.stats()['tcp.keepalive.timeout']).toBe(1);
  });

  it('no keepalive probe while data is in flight: the retransmission timer watches the peer', async () => {
    const h = scriptHost({ tcp: { keepaliveInterval: 100, keepaliveCount: 1 } });
    h.listen({
      onConnection: (s) => {
        s.setKeepAlive(true, 300);
        s.write(Buffer.alloc(100, 7));
      },
    });
    await handshake(h)
      .send('P. 1:101(100) ack 1') // never acknowledged
      .quiet(199)
      .after(1)
      .send('P. 1:101(100) ack 1') // RTO 200 ms
      .quiet(399)
      .after(1)
      .send('P. 1:101(100) ack 1') // backed off: 400 ms; no keepalive probe at 300 or 600 ms
      .quiet(500)
      .state('ESTABLISHED');
    expect(h.stack.stats()['tcp.keepalive.probe']).toBeUndefined();
  });

  it("destroy() inside the 'connect' handler: one RST, CLOSED, and the rest of the SYN-ACK is ignored", async () => {
    const h = scriptHost();
    await script(h)
      .do((h) => {
        const socket = h.connect();
        socket.on('connect', () => socket.destroy());
      })
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .send('R. 1:1(0) ack 1')
      .state('CLOSED')
      .quiet(10_000);
    expect(h.stack.connections()).toEqual([]);
    expect(h.stack.tcp.nextDeadline()).toBe(Infinity);
  });
});

describe('the script helper itself', () => {
  it('parses lines and rejects malformed ones', () => {
    expect(parseLine('S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 7>')).toEqual({
      flags: 0x12,
      start: 0,
      len: 0,
      ack: 1,
      win: 65535,
      options: { mss: 1460, wscale: 7 },
    });
    expect(parseLine('P. 1:101(100) ack 1 <*>').options).toBe('*');
    expect(() => parseLine('S 0:5(3)')).toThrow(/is not 3 bytes/);
    expect(() => parseLine('. 1:1(0)')).toThrow(/needs "ack N"/);
    expect(() => parseLine('S 0:0(0) ack 1')).toThrow(/without the ACK flag/);
    expect(() => parseLine('S 0:0(0) <mss 1460,bogus>')).toThrow(/unknown option/);
    expect(() => parseLine('X 0:0(0)')).toThrow(/cannot parse/);
  });

  it('a mismatch fails with the seed, the expected and actual lines, and the transcript', async () => {
    const h = scriptHost({ seed: 7 });
    h.listen();
    const run = script(h).recv('S 0:0(0) win 65535 <mss 1460>').send('S. 0:0(0) ack 2 <mss 1460>');
    await expect(run).rejects.toThrow(/seed 7.*\n.*> S\. 0:0\(0\) ack 2 <mss 1460>\nbut the stack sent\n.*> S\. 0:0\(0\) ack 1 <mss 1460>/);
  });

  it('a segment nobody expected fails the script at its end', async () => {
    const h = scriptHost();
    h.listen();
    await expect(script(h).recv('S 0:0(0) win 65535 <mss 1460>')).rejects.toThrow(/no line expected/);
  });
});
