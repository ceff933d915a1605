/**
 * Sender-side flow rules as timelines (test/helpers/script.ts): one stack, the test plays a
 * peer that opens its window in awkward steps, as an SWS-unaware receiver would.
 * Peer MSS 1000 and no window scaling, so every number is a byte count.
 */
import { describe, expect, it } from 'vitest';
import { passiveOpen, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

/** Passive open; the peer offers `win` bytes from the start (so the largest window it ever offered is `win`). */
function open(h: ScriptHost, win: number) {
  return passiveOpen(h, { win, peerOpts: '<mss 1000>' });
}

describe('sender silly-window-syndrome avoidance (RFC 1122 §4.2.3.4)', () => {
  it('[sws.sender-hold] a small window-limited segment is held while data is in flight; full segments go when the window allows', async () => {
    const h = scriptHost();
    h.listen();
    await open(h, 10_000)
      .do((h) => h.socket.write(Buffer.alloc(25_000, 1)))
      // cwnd = 10 MSS = the window: ten full segments.
      .send('. 1:1001(1000) ack 1')
      .send('. 1001:2001(1000) ack 1')
      .send('. 2001:3001(1000) ack 1')
      .send('. 3001:4001(1000) ack 1')
      .send('. 4001:5001(1000) ack 1')
      .send('. 5001:6001(1000) ack 1')
      .send('. 6001:7001(1000) ack 1')
      .send('. 7001:8001(1000) ack 1')
      .send('. 8001:9001(1000) ack 1')
      .send('. 9001:10001(1000) ack 1')
      // The right edge moves by 300 bytes only: 300 < MSS and < half the largest window (5000),
      // and data is in flight, so nothing is sent (a silly 300-byte segment would be).
      .recv('. 1:1(0) ack 1001 win 9300')
      .quiet(100)
      // 1100 bytes usable now: one full segment; the 100 bytes left over wait.
      .recv('. 1:1(0) ack 2001 win 9100')
      .send('. 10001:11001(1000) ack 1')
      .quiet(100)
      .recv('. 1:1(0) ack 11001 win 0')
      .quiet(50)
      // The window reopens by 4.5 MSS: four full segments; the 500 bytes left of it wait.
      .recv('. 1:1(0) ack 11001 win 4500')
      .send('. 11001:12001(1000) ack 1')
      .send('. 12001:13001(1000) ack 1')
      .send('. 13001:14001(1000) ack 1')
      .send('. 14001:15001(1000) ack 1')
      .quiet(150);
    expect(h.stack.stats()['tcp.retransmit']).toBeUndefined();
  });

  it('[sws.sender-half-window] a small segment of at least half the largest window the peer offered is sent at once', async () => {
    // A peer whose whole buffer is 1.5 MSS: half of it (750 bytes) is worth sending.
    const h = scriptHost();
    h.listen();
    await open(h, 1500)
      .do((h) => h.socket.write(Buffer.alloc(5000, 3)))
      .send('. 1:1001(1000) ack 1')
      .quiet(50) // 500 usable: less than half of 1500
      .recv('. 1:1(0) ack 1001 win 800')
      .send('. 1001:1801(800) ack 1') // 800 >= 750
      .recv('. 1:1(0) ack 1801 win 700')
      .quiet(199) // 700 < 750 and nothing in flight: wait for the override timeout
      .after(1)
      .send('. 1801:2501(700) ack 1')
      .recv('. 1:1(0) ack 2501 win 1500')
      .send('. 2501:3501(1000) ack 1');
  });

  it('[sws.sender-override] with nothing in flight, a small window is used only when the persist timer expires (the "override timeout")', async () => {
    const h = scriptHost();
    h.listen();
    await open(h, 10_000)
      .do((h) => h.socket.write(Buffer.alloc(10_450, 2)))
      .send('. 1:1001(1000) ack 1')
      .send('. 1001:2001(1000) ack 1')
      .send('. 2001:3001(1000) ack 1')
      .send('. 3001:4001(1000) ack 1')
      .send('. 4001:5001(1000) ack 1')
      .send('. 5001:6001(1000) ack 1')
      .send('. 6001:7001(1000) ack 1')
      .send('. 7001:8001(1000) ack 1')
      .send('. 8001:9001(1000) ack 1')
      .send('. 9001:10001(1000) ack 1')
      // Everything acknowledged, but only 300 bytes of window: no ACK will come to open it further,
      // so after one RTO (200 ms here: the minimum) the 300 bytes go out anyway.
      .recv('. 1:1(0) ack 10001 win 300')
      .quiet(199)
      .after(1)
      .send('. 10001:10301(300) ack 1')
      // The last 150 bytes fit the window that opens next: "all queued data can be sent now".
      .recv('. 1:1(0) ack 10301 win 150')
      .send('P. 10301:10451(150) ack 1')
      .recv('. 1:1(0) ack 10451 win 10000')
      .quiet(1000);
    expect(h.stack.stats()['tcp.persist.probe']).toBeUndefined(); // not a zero-window probe
  });
});

describe("Nagle's algorithm (RFC 896; RFC 1122 §4.2.3.4), Minshall's variant", () => {
  it('[nagle.hold-small] a small segment waits while an earlier small one is unacknowledged; full segments do not wait', async () => {
    const h = scriptHost();
    h.listen();
    await open(h, 60_000)
      .do((h) => h.socket.write(Buffer.alloc(100, 1)))
      .send('P. 1:101(100) ack 1') // nothing small outstanding: goes at once
      .do((h) => h.socket.write(Buffer.alloc(100, 2)))
      .do((h) => h.socket.write(Buffer.alloc(100, 3)))
      .quiet(30) // held, and coalesced
      .recv('. 1:1(0) ack 101 win 60000')
      .send('P. 101:301(200) ack 1')
      // 2.5 MSS: two full segments go despite the small one in flight; the 500-byte tail waits for it.
      .do((h) => h.socket.write(Buffer.alloc(2500, 4)))
      .send('. 301:1301(1000) ack 1')
      .send('. 1301:2301(1000) ack 1')
      .quiet(30)
      .recv('. 1:1(0) ack 301 win 60000') // the small one is acknowledged (full ones still in flight)
      .send('P. 2301:2801(500) ack 1')
      .recv('. 1:1(0) ack 2801 win 60000')
      .quiet(500);
  });

  it("[nagle.minshall] Minshall: a full segment then a small tail go together (Linux's default), so a 1.5-MSS reply never waits for an ACK", async () => {
    const h = scriptHost();
    h.listen();
    await open(h, 60_000)
      .do((h) => h.socket.write(Buffer.alloc(1500, 1)))
      .send('. 1:1001(1000) ack 1')
      .send('P. 1001:1501(500) ack 1') // classic Nagle would hold this until the first is acknowledged
      .recv('. 1:1(0) ack 1501 win 60000')
      .quiet(100);
  });

  it('[nagle.nodelay] setNoDelay(true) sends every write at once', async () => {
    const h = scriptHost();
    h.listen({ onConnection: (s) => s.setNoDelay(true) });
    await open(h, 60_000)
      .do((h) => h.socket.write(Buffer.alloc(100, 1)))
      .send('P. 1:101(100) ack 1')
      .do((h) => h.socket.write(Buffer.alloc(100, 2)))
      .send('P. 101:201(100) ack 1')
      .do((h) => h.socket.write(Buffer.alloc(100, 3)))
      .send('P. 201:301(100) ack 1')
      // Turning Nagle back on: the next small write waits behind the unacknowledged ones.
      .do((h) => h.socket.setNoDelay(false))
      .do((h) => h.socket.write(Buffer.alloc(100, 4)))
      .quiet(20)
      .recv('. 1:1(0) ack 301 win 60000')
      .send('P. 301:401(100) ack 1');
  });
});
