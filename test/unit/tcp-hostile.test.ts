/**
 * TCP under hostile traffic, as packetdrill-style timelines (test/helpers/script.ts): SYN cookies
 * when the SYN queue is full, SYN-ACK retransmissions cut under pressure, orphans that give up,
 * and the caps on connections, TIME-WAIT entries and orphans. The rate limits on replies are in
 * tcp-script.test.ts beside the RFC 5961 rules they limit.
 */
import { describe, expect, it } from 'vitest';
import { ACK, RST, SYN } from '../../src/tcp/segment.js';
import { asPeer, script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/** A client on `port` opens a connection the application keeps: SYN, SYN-ACK, ACK. */
function openFrom(h: ScriptHost, port: number, ackWin = 512) {
  return script(h)
    .do((host) => {
      host.peerPort = port;
    })
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
    .recv(`. 1:1(0) ack 1 win ${ackWin}`);
}

describe('SYN cookies (RFC 4987 §3.6)', () => {
  /** A queue of one, taken by client 40000's handshake; then client 40001 sends a SYN with `synOptions`. */
  function fullQueueThenSyn(h: ScriptHost, synOptions: string) {
    h.listen({ backlog: 1 });
    return script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .do((host) => {
        host.peerPort = 40001;
      })
      .recv(`S 0:0(0) win 65535 <${synOptions}>`);
  }

  /** Client 40000 fills a SYN queue of one; client 40001's SYN gets a cookie. */
  function fullQueue(h: ScriptHost, mss = 1460) {
    return fullQueueThenSyn(h, `mss ${mss},wscale 7`)
      // A cookie: our MSS, an unscaled window, and no window scale (the cookie cannot carry it
      // without timestamps). Nothing is stored for it.
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .do((host) => {
        expect(host.conn).toBeUndefined();
        expect(host.stack.stats()['tcp.syncookies.sent']).toBe(1);
      });
  }

  it("[limits.syncookie] a full SYN queue answers with a cookie; the cookie's ACK makes an ESTABLISHED connection that carries data", async () => {
    const h = scriptHost();
    await fullQueue(h)
      .recv('. 1:1(0) ack 1 win 512')
      .state('ESTABLISHED')
      .recv('P. 1:101(100) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 101');
    expect(h.conn!.wscaleOk).toBe(false); // our window stays unscaled: at most 65535
    expect(h.received).toEqual(h.peerBytes(1, 101));
    expect(h.stack.stats()['tcp.syncookies.accepted']).toBe(1);
  });

  it("a valid cookie's ACK that finds the accept queue full, or the connection cap reached, is dropped without a RST, as any last ACK of a handshake with no room", async () => {
    for (const full of ['accept-queue', 'connections'] as const) {
      // A SYN queue of one either way; an accept queue of one, or of two with a cap of one connection.
      const h = scriptHost({ limits: full === 'connections' ? { maxConnections: 1, maxSynBacklog: 1 } : {} });
      h.stack.tcp.listen(h.localPort, full === 'connections' ? 2 : 1); // nobody accepts
      await script(h)
        .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
        .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
        .do(asPeer(40001))
        .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
        .send('S. 0:0(0) ack 1 win 65535 <mss 1460>') // the SYN queue (one) is full: a cookie
        .do(asPeer(40000))
        .recv('. 1:1(0) ack 1 win 512') // 40000 completes and waits to be accepted
        .do(asPeer(40001))
        .recv('. 1:1(0) ack 1 win 512') // a good cookie, but no room
        .quiet(100);
      const st = h.stack.stats();
      expect([st['tcp.listen.accept-queue-full'], st['tcp.limit.connections'], st['tcp.syncookies.accepted']], full).toEqual(
        full === 'accept-queue' ? [1, undefined, undefined] : [undefined, 1, undefined],
      );
      expect(h.stack.tcp.connectionList().map((c) => c.remotePort), full).toEqual([40000]);
    }
  });

  /** As fullQueue, but client 40001 is Linux-like: its SYN offers SACK, timestamps and window scale 7. */
  function fullQueueWithTimestamps(h: ScriptHost, synOptions = 'mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7') {
    return fullQueueThenSyn(h, synOptions);
  }

  /** The options Linux's encoding put in the low 6 bits of the cookie SYN-ACK's TSval (its offset taken away). */
  function cookieTsBits(h: ScriptHost): number {
    const synAck = h.out.find((p) => p.seg && p.seg.flags === (SYN | ACK) && p.seg.dstPort === 40001)!.seg!;
    return ((synAck.options.timestamp!.value - h.conn!.ts!.offset) >>> 0) & 63;
  }

  it('[limits.syncookie-ts] with timestamps, the window scale and SACK-permitted ride in the low bits of our TSval (Linux\'s encoding): the cookie connection keeps both', async () => {
    const h = scriptHost();
    await fullQueueWithTimestamps(h)
      // Still a cookie (nothing stored), but now it can offer what the SYN offered.
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 1000,wscale 7>')
      .do((host) => expect(host.conn).toBeUndefined())
      .after(20)
      .recv('. 1:1(0) ack 1 win 512 <TS val 1020 ecr 0>')
      .state('ESTABLISHED')
      // A hole: the out-of-order segment is reported with a SACK block, at once.
      .recv('P. 101:201(100) ack 1 win 512 <TS val 1030 ecr 0>')
      .send('. 1:1(0) ack 1 <*>');
    const c = h.conn!;
    expect(cookieTsBits(h)).toBe(7 | 16); // peer's wscale 7, SACK-permitted (TS_OPT_SACK)
    expect([c.wscaleOk, c.snd.wscale, c.rcv.wscale, c.sackOk, c.ts?.enabled]).toEqual([true, 7, 7, true, true]);
    expect(c.snd.mss).toBe(1460 - 12); // the timestamps option comes out of every segment
    const dupAck = h.out[h.out.length - 1]!.seg!;
    expect(dupAck.options.sack).toEqual([[(h.peerIsn + 101) >>> 0, (h.peerIsn + 201) >>> 0]]);
    expect(dupAck.options.timestamp?.echo).toBe(1020); // TS.Recent from the ACK; the segment after the hole does not move it
    expect(h.stack.stats()['tcp.syncookies.accepted']).toBe(1);
  });

  it('with timestamps but no window scale or SACK in the SYN, the cookie says so and the connection has neither', async () => {
    const h = scriptHost();
    await fullQueueWithTimestamps(h, 'mss 1460,nop,nop,TS val 1000 ecr 0')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 0 ecr 1000>')
      .after(20)
      .recv('. 1:1(0) ack 1 win 65535 <TS val 1020 ecr 0>')
      .state('ESTABLISHED');
    expect(cookieTsBits(h)).toBe(15); // "no window scaling"
    expect([h.conn!.wscaleOk, h.conn!.sackOk, h.conn!.ts?.enabled]).toEqual([false, false, true]);
  });

  it('a cookie TSval is never ahead of the clock, and an ACK without timestamps gets none of the options', async () => {
    const h = scriptHost();
    await fullQueueWithTimestamps(h)
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 0 ecr 1000,wscale 7>')
      .after(20)
      .recv('. 1:1(0) ack 1 win 512') // the peer dropped timestamps: scale and SACK cannot be recovered
      .state('ESTABLISHED');
    const c = h.conn!;
    expect([c.wscaleOk, c.sackOk, c.ts]).toEqual([false, false, undefined]);
  });

  it('the ACK may carry the first data: it is delivered with the handshake', async () => {
    const h = scriptHost();
    await fullQueue(h)
      .recv('P. 1:11(10) ack 1 win 512')
      .state('ESTABLISHED')
      .after(40)
      .send('. 1:1(0) ack 11');
    expect(h.received).toEqual(h.peerBytes(1, 11));
  });

  it('[limits.syncookie-mss] the cookie carries the MSS as an entry of its table: MSS 1400 becomes 1300', async () => {
    const h = scriptHost();
    await fullQueue(h, 1400).recv('. 1:1(0) ack 1 win 512').state('ESTABLISHED');
    expect(h.conn!.snd.mss).toBe(1300);
  });

  it('[limits.syncookie-invalid] an ACK with a forged or a stale cookie makes no connection: RST, counted as failed', async () => {
    const h = scriptHost();
    await fullQueue(h)
      .recv('. 1:1(0) ack 777 win 512') // not our cookie
      .send('R 777:777(0) win 0')
      .do((host) => {
        host.peerPort = 40000;
      })
      .recv('R 1:1(0)') // the first client gives up, so no SYN-ACK of its is retransmitted below
      .do((host) => {
        host.peerPort = 40001;
      })
      .after(100_000) // the cookie was good for less than 2 minutes of its one-minute clock
      .recv('. 1:1(0) ack 1 win 512')
      .send('R 1:1(0) win 0')
      .state('CLOSED');
    expect(h.stack.stats()['tcp.syncookies.failed']).toBe(2);
    expect(h.stack.connections()).toEqual([]);
  });

  it('with synCookies off, a SYN beyond the SYN queue is dropped', async () => {
    const h = scriptHost({ limits: { synCookies: false } });
    h.listen({ backlog: 1 });
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460>')
      .do((host) => {
        host.peerPort = 40001;
      })
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .quiet(500);
    expect(h.stack.stats()['tcp.listen.syn-dropped']).toBe(1);
  });
});

describe('SYN-ACK retransmissions under SYN-queue pressure', () => {
  /** `n` clients send a SYN each and never answer the SYN-ACK. */
  async function halfOpen(n: number, backlog: number) {
    const h = scriptHost();
    h.listen({ backlog });
    const s = script(h);
    for (let i = 0; i < n; i++) {
      s.do((host) => {
        host.peerPort = 41000 + i;
      }).recv('S 0:0(0) win 65535 <mss 1460>');
    }
    await s.do((host) => {
      host.consumed = host.out.length;
    });
    return h;
  }
  const synAcks = (h: ScriptHost) => h.out.filter((c) => c.seg && c.seg.flags & SYN && c.seg.flags & ACK).length;

  it('[limits.synack-pressure] are cut to 2 while more than half the SYN queue is taken: such a half-open connection is gone after 1 + 2 + 4 s', async () => {
    const h = await halfOpen(6, 8); // 6 of 8: pressure
    await script(h)
      .after(7_000 - 1)
      .do((host) => expect(host.stack.tcp.connectionCount).toBe(6))
      .after(2)
      .do((host) => {
        host.consumed = host.out.length;
      });
    // Two give up; then 4 of 8 is no longer pressure, and the other four keep retrying.
    expect(h.stack.tcp.connectionCount).toBe(4);
    // Each sent its SYN-ACK and 2 retransmissions; the four that stay retransmit a third time at 7 s.
    expect(synAcks(h)).toBe(6 * 3 + 4);
    expect(h.stack.stats()['tcp.listen.synack-retries-cut']).toBe(2);
  });

  it('keep their usual count otherwise', async () => {
    const h = await halfOpen(2, 8);
    await script(h)
      .after(7_001)
      .do((host) => {
        expect(host.stack.tcp.connectionCount).toBe(2);
        host.consumed = host.out.length;
      });
    expect(h.stack.stats()['tcp.listen.synack-retries-cut']).toBeUndefined();
  });
});

describe('orphans (connections the application has closed)', () => {
  it('[limits.orphan-give-up] give up after orphanRetries zero-window probes, even when the peer answers every one', async () => {
    const h = scriptHost({ limits: { orphanRetries: 8 } });
    h.listen({
      onConnection: (s) => {
        s.write(Buffer.alloc(3000, 1));
        s.end();
        s.once('finish', () => s.destroy()); // let go: an orphan in FIN-WAIT-1 with data queued
      },
    });
    const s = openFrom(h, 40000, 0);
    // Probes back off from the RTO (200 ms) and the peer acknowledges each one with a zero window,
    // which before kept the connection forever.
    for (let k = 0; k < 8; k++) {
      const interval = 200 * 2 ** k;
      s.quiet(interval - 1)
        .after(1)
        .send('. 1:2(1) ack 1')
        .recv('. 1:1(0) ack 1 win 0');
    }
    await s.state('FIN-WAIT-1').quiet(200 * 2 ** 8 - 1).after(1).state('CLOSED').quiet(60_000);
    expect(h.stack.stats()['tcp.orphan.gave-up']).toBe(1);
    expect(h.stack.stats()['tcp.persist.probe']).toBe(8);
  });

  it('a connection the application still holds keeps probing a peer that answers', async () => {
    const h = scriptHost({ limits: { orphanRetries: 8 } });
    h.listen({ onConnection: (s) => s.write(Buffer.alloc(3000, 1)) });
    const s = openFrom(h, 40000, 0);
    for (let k = 0; k < 10; k++) {
      const interval = Math.min(200 * 2 ** k, 120_000);
      s.quiet(interval - 1)
        .after(1)
        .send('. 1:2(1) ack 1')
        .recv('. 1:1(0) ack 1 win 0');
    }
    await s.state('ESTABLISHED');
  });

  it('[limits.orphan-cap] are capped at maxOrphans: one more resets the oldest', async () => {
    const h = scriptHost({ limits: { maxOrphans: 2 } });
    const closed: string[] = [];
    h.stack.onTransition((e) => e.to === 'CLOSED' && closed.push(`${e.conn.remotePort}: ${e.cause}`));
    h.listen({
      onConnection: (s) => {
        s.write(Buffer.alloc(3000, 1));
        s.end();
        s.once('finish', () => s.destroy());
      },
    });
    for (const port of [40000, 40001, 40002]) {
      await openFrom(h, port, 0).do((host) => {
        host.consumed = host.out.length;
      });
    }
    const rsts = h.out.filter((c) => c.seg && c.seg.flags & RST);
    expect(rsts.map((c) => c.seg!.dstPort)).toEqual([40000]);
    expect(closed).toEqual(['40000: too many orphans']);
    expect(h.stack.stats()['tcp.limit.orphans']).toBe(1);
    expect(h.stack.stats()['tcp.orphans']).toBe(2);
    expect(h.stack.connectionStates()).toEqual({ 'FIN-WAIT-1': 2 });
  });
});

describe('caps on connection state', () => {
  it('[limits.time-wait-cap] beyond maxTimeWait, a closing connection skips TIME-WAIT (Linux tcp_max_tw_buckets)', async () => {
    const h = scriptHost({ limits: { maxTimeWait: 1 } });
    h.listen({ onConnection: (s) => s.end() }); // we close first: TIME-WAIT is ours
    for (const port of [40000, 40001]) {
      await openFrom(h, port)
        .send('F. 1:1(0) ack 1')
        .recv('F. 1:1(0) ack 2 win 512')
        .send('. 2:2(0) ack 2');
    }
    expect(h.stack.connectionStates()).toEqual({ 'TIME-WAIT': 1 });
    expect(h.stack.stats()['tcp.limit.time-wait']).toBe(1);
  });

  it('[limits.connection-cap] beyond maxConnections, a new SYN gets a RST', async () => {
    const h = scriptHost({ limits: { maxConnections: 1 } });
    h.listen();
    await openFrom(h, 40000)
      .do((host) => {
        host.peerPort = 40001;
      })
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .do((host) => {
        // <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>, to the second client (not relative to anything it knows)
        expect(host.unread.map((c) => [c.seg!.dstPort, c.seg!.flags, c.seg!.seq, c.seg!.ack])).toEqual([[40001, RST | ACK, 0, (host.peerIsn + 1) >>> 0]]);
        host.consumed = host.out.length;
      });
    expect(h.stack.stats()['tcp.limit.connections']).toBe(1);
    expect(h.stack.connectionStates()).toEqual({ ESTABLISHED: 1 });
  });
});

describe('listing connections page by page (/connections?limit=&offset=)', () => {
  it('skips `offset` connections, live ones first, then TIME-WAIT, and describes only the page', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => (s.remotePort === 40001 ? s.end() : undefined) });
    for (const port of [40000, 40001, 40002, 40003]) {
      const s = openFrom(h, port);
      // The application closes 40001 first: it goes to TIME-WAIT.
      if (port === 40001) s.send('F. 1:1(0) ack 1').recv('F. 1:1(0) ack 2 win 512').send('. 2:2(0) ack 2');
      await s;
    }
    const all = h.stack.connections();
    expect(all.map((c) => [c.remote.split(':')[1], c.state])).toEqual([
      ['40000', 'ESTABLISHED'], ['40002', 'ESTABLISHED'], ['40003', 'ESTABLISHED'], ['40001', 'TIME-WAIT'],
    ]);
    expect(h.stack.connections(2, 1)).toEqual(all.slice(1, 3));
    expect(h.stack.connections(10, 3)).toEqual(all.slice(3));
    expect(h.stack.connections(10, 4)).toEqual([]);
  });
});
