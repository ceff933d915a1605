/**
 * Request/response traffic with both classic latency traps armed: Nagle's algorithm on the
 * sender (RFC 896, on by default) and delayed ACKs on the receiver (RFC 1122 §4.2.3.2, 40 ms).
 * Each exchange must take one round trip, not a round trip plus a delayed-ACK timeout.
 * Time is virtual, so "under RTT + 1 ms" is exact, not a timing guess.
 */
import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim } from '../helpers/sim.js';
import type { TcpSocket } from '../../src/tcp/socket.js';

const MSS = 1460;
const ONE_WAY = 10;
const RTT = 2 * ONE_WAY;

/** `rounds` exchanges of a `req`-byte request and a `resp`-byte response; returns each exchange's duration (ms). */
async function pingPong(req: number, resp: number, rounds: number, noDelay = false): Promise<number[]> {
  const sim = createSim({ seed: 21, aToB: { delayMs: ONE_WAY }, bToA: { delayMs: ONE_WAY } });
  const { clock, a, b } = sim;
  b.createServer({ noDelay }, (s: TcpSocket) => {
    let have = 0;
    s.on('data', (d: Buffer) => {
      have += d.length;
      // A complete request: answer it at once (a server that writes its reply in one call).
      while (have >= req) {
        have -= req;
        s.write(Buffer.alloc(resp, 0x72));
      }
    });
  }).listen(80);
  await clock.sleep(1);
  const c = a.connect({ host: B_ADDR, port: 80, noDelay });
  await clock.run(() => c.connecting, 1000);
  const durations: number[] = [];
  let have = 0;
  let sentAt = 0;
  const ask = (): void => {
    sentAt = clock.now();
    c.write(Buffer.alloc(req, 0x71));
  };
  c.on('data', (d: Buffer) => {
    have += d.length;
    if (have >= resp) {
      have -= resp;
      durations.push(clock.now() - sentAt);
      if (durations.length < rounds) ask();
    }
  });
  // Start after the handshake's ACKs have settled, as a client that connects then asks.
  await clock.sleep(100);
  ask();
  await clock.run(() => durations.length < rounds, 60_000);
  expect(a.stats()['tcp.retransmit']).toBeUndefined();
  return durations;
}

describe('Nagle + delayed ACK on request/response (RFC 896, RFC 1122 §4.2.3.2)', () => {
  it('[nagle.reqresp-1.5mss] 100-byte requests, 1.5-MSS responses: every exchange takes one RTT', async () => {
    const d = await pingPong(100, Math.floor(1.5 * MSS), 30);
    expect(d).toHaveLength(30);
    expect(Math.max(...d)).toBeLessThan(RTT + 1);
  });

  it('[nagle.reqresp-3.5mss] 100-byte requests, 3.5-MSS responses: every exchange takes one RTT', async () => {
    const d = await pingPong(100, Math.floor(3.5 * MSS), 30);
    expect(d).toHaveLength(30);
    expect(Math.max(...d)).toBeLessThan(RTT + 1);
  });

  it('[nagle.reqresp-both-ways] 1.5-MSS requests and 2.5-MSS responses: small tails in both directions, still one RTT each', async () => {
    const d = await pingPong(Math.floor(1.5 * MSS), Math.floor(2.5 * MSS), 30);
    expect(Math.max(...d)).toBeLessThan(RTT + 1);
  });

  it('[nagle.reqresp-nodelay] with setNoDelay(true) on both sides the timing is the same', async () => {
    const d = await pingPong(100, Math.floor(3.5 * MSS), 10, true);
    expect(Math.max(...d)).toBeLessThan(RTT + 1);
  });
});
