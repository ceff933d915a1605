/**
 * Delayed ACKs (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2, RFC 5681 §4.2) as timelines: one stack,
 * the test plays the sending peer (test/helpers/script.ts).
 */
import { describe, expect, it } from 'vitest';
import { passiveOpen, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

function open(h: ScriptHost, peerOpts = '<mss 1460>') {
  return passiveOpen(h, { peerOpts });
}

describe('delayed ACK', () => {
  it('[delack.timer] one segment alone is acknowledged when the delayed-ACK timer expires (40 ms by default)', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .recv('P. 1:1461(1460) ack 1')
      .quiet(39)
      .after(1)
      .send('. 1:1(0) ack 1461')
      .recv('P. 1461:1561(100) ack 1')
      .quiet(39)
      .after(1)
      .send('. 1:1(0) ack 1561');
  });

  it('[delack.every-second] the second full-sized segment is acknowledged at once', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .recv('. 1:1461(1460) ack 1')
      .recv('. 1461:2921(1460) ack 1')
      .send('. 1:1(0) ack 2921')
      .recv('. 2921:4381(1460) ack 1')
      .quiet(10)
      .recv('. 4381:5841(1460) ack 1')
      .send('. 1:1(0) ack 5841')
      .quiet(100);
  });

  it("[delack.peer-mss] \"full-sized\" is the peer's segment size: 536-byte segments from a peer without an MSS option", async () => {
    const h = scriptHost();
    h.listen();
    await open(h, '')
      .recv('. 1:537(536) ack 1')
      .recv('. 537:1073(536) ack 1')
      .send('. 1:1(0) ack 1073')
      .quiet(100);
  });

  it('[delack.cap] the delay never exceeds 200 ms, whatever delayedAckMs is set to', async () => {
    const h = scriptHost({ tcp: { delayedAckMs: 1000 } });
    h.listen();
    await open(h).recv('P. 1:101(100) ack 1').quiet(199).after(1).send('. 1:1(0) ack 101');
  });

  it('[delack.ooo-immediate] every out-of-order segment gets an immediate duplicate ACK; the one filling the hole an immediate full ACK', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .recv('. 1461:2921(1460) ack 1') // 1:1461 is missing
      .send('. 1:1(0) ack 1')
      .recv('. 2921:4381(1460) ack 1')
      .send('. 1:1(0) ack 1')
      .recv('. 4381:5841(1460) ack 1')
      .send('. 1:1(0) ack 1')
      .recv('. 1:1461(1460) ack 1') // fills the hole: no delay
      .send('. 1:1(0) ack 5841')
      .quiet(100);
    expect(h.received).toEqual(h.peerBytes(1, 5841));
  });

  it('[delack.one-per-batch] segments arriving in one batch get one ACK (no ACK per segment), but each out-of-order one still gets its own', async () => {
    const h = scriptHost();
    h.listen();
    await open(h)
      .do((h) => {
        // Four in-order segments delivered to the stack as a single batch (like one TUN read).
        h.inject('. 1:1461(1460) ack 1');
        h.inject('. 1461:2921(1460) ack 1');
        h.inject('. 2921:4381(1460) ack 1');
        h.inject('. 4381:5841(1460) ack 1');
      })
      .send('. 1:1(0) ack 5841')
      .quiet(100)
      .do((h) => {
        h.inject('. 5841:7301(1460) ack 1'); // in order: its ACK would wait...
        h.inject('. 8761:10221(1460) ack 1'); // ...but a hole appears: ACK at once, for each
        h.inject('. 10221:11681(1460) ack 1');
      })
      .send('. 1:1(0) ack 7301')
      .send('. 1:1(0) ack 7301')
      .quiet(100);
  });

  it('[delack.piggyback] an ACK owed is carried by the reply data: no separate ACK segment', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.on('data', (d: Buffer) => s.write(Buffer.from(`echo ${d.length}`))) });
    await open(h)
      .recv('P. 1:101(100) ack 1')
      .send('P. 1:9(8) ack 101')
      .quiet(100);
  });
});
