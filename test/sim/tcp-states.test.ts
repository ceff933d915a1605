/**
 * Exact state-transition sequences of both sides for each way a connection can open and
 * close (RFC 9293 §3.5, §3.6, figure 5), over a perfect or deliberately broken link.
 */
import { describe, expect, it } from 'vitest';
import { A_ADDR, B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { Sim } from '../helpers/sim.js';
import type { TcpSocket } from '../../src/tcp/socket.js';

const MSL = 1000;

interface Watched {
  socket: TcpSocket;
  data: Buffer[];
  events: string[];
}

function watch(socket: TcpSocket): Watched {
  const w: Watched = { socket, data: [], events: [] };
  socket.on('data', (d: Buffer) => w.data.push(d));
  for (const ev of ['connect', 'end', 'finish', 'close'] as const) socket.on(ev, () => w.events.push(ev));
  socket.on('error', (e: Error & { code?: string }) => w.events.push(`error ${e.code}`));
  return w;
}

/** B listens on 80 and watches every accepted socket; `onAccept` is the server application. */
function serve(sim: Sim, onAccept: (w: Watched) => void = () => {}, opts: { allowHalfOpen?: boolean } = {}): Watched[] {
  const accepted: Watched[] = [];
  sim.b
    .createServer({ allowHalfOpen: opts.allowHalfOpen }, (s) => {
      const w = watch(s);
      accepted.push(w);
      onAccept(w);
    })
    .listen(80);
  return accepted;
}

/** Both stacks hold no connection and no timer. */
function expectQuiescent(sim: Sim): void {
  const msg = `seed ${sim.seed}\n${sim.trace.join('\n')}`;
  expect(sim.a.connections(), msg).toEqual([]);
  expect(sim.b.connections(), msg).toEqual([]);
  expect(sim.a.connectionStates(), msg).toEqual({});
  expect(sim.b.connectionStates(), msg).toEqual({});
  expect(sim.a.tcp.nextDeadline(), msg).toBe(Infinity);
  expect(sim.b.tcp.nextDeadline(), msg).toBe(Infinity);
}

/** How long each side spent in TIME-WAIT (virtual ms), per connection. */
function timeWaitDurations(sim: Sim, side: 'a' | 'b'): number[] {
  const out: number[] = [];
  const entered = new Map<unknown, number>();
  for (const e of sim.transitions(side)) {
    if (e.to === 'TIME-WAIT') entered.set(e.conn, e.at);
    if (e.from === 'TIME-WAIT') out.push(e.at - entered.get(e.conn)!);
  }
  return out;
}

const PASSIVE_OPEN = ['CLOSED>SYN-RECEIVED', 'SYN-RECEIVED>ESTABLISHED'];
const ACTIVE_OPEN = ['CLOSED>SYN-SENT', 'SYN-SENT>ESTABLISHED'];
const ACTIVE_CLOSE = ['ESTABLISHED>FIN-WAIT-1', 'FIN-WAIT-1>FIN-WAIT-2', 'FIN-WAIT-2>TIME-WAIT', 'TIME-WAIT>CLOSED'];
const PASSIVE_CLOSE = ['ESTABLISHED>CLOSE-WAIT', 'CLOSE-WAIT>LAST-ACK', 'LAST-ACK>CLOSED'];

describe('opening and closing: exact transition sequences', () => {
  it('client closes first: the client passes through TIME-WAIT for exactly 2*MSL', async () => {
    const sim = createSim({ seed: 1, tcp: { msl: MSL } });
    const server = serve(sim);
    await sim.clock.sleep(1);
    const client = watch(sim.a.connect({ host: B_ADDR, port: 80 }));
    client.socket.on('connect', () => client.socket.end('hello'));
    const ok = await sim.clock.run(() => !(client.events.includes('close') && server[0]?.events.includes('close')), 10_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    expect(Buffer.concat(server[0]!.data).toString()).toBe('hello');
    await sim.clock.sleep(2 * MSL);

    expect(sim.states('a')).toEqual([...ACTIVE_OPEN, ...ACTIVE_CLOSE]);
    expect(sim.states('b')).toEqual([...PASSIVE_OPEN, ...PASSIVE_CLOSE]);
    expect(timeWaitDurations(sim, 'a')).toEqual([2 * MSL]);
    expect(client.events).toEqual(['connect', 'finish', 'end', 'close']);
    expect(server[0]!.events).toEqual(['end', 'finish', 'close']);
    expectQuiescent(sim);
  });

  it('server closes first: TIME-WAIT is on the server', async () => {
    const sim = createSim({ seed: 2, tcp: { msl: MSL } });
    const server = serve(sim, (w) => w.socket.end('bye'));
    await sim.clock.sleep(1);
    const client = watch(sim.a.connect({ host: B_ADDR, port: 80 }));
    const ok = await sim.clock.run(() => !(client.events.includes('close') && server[0]?.events.includes('close')), 10_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    expect(Buffer.concat(client.data).toString()).toBe('bye');
    await sim.clock.sleep(2 * MSL);

    expect(sim.states('a')).toEqual([...ACTIVE_OPEN, ...PASSIVE_CLOSE]);
    expect(sim.states('b')).toEqual([...PASSIVE_OPEN, ...ACTIVE_CLOSE]);
    expect(timeWaitDurations(sim, 'b')).toEqual([2 * MSL]);
    expectQuiescent(sim);
  });

  it('simultaneous open: both connect to each other from fixed ports (SYN-SENT, SYN-RECEIVED, ESTABLISHED)', async () => {
    const sim = createSim({ seed: 3, tcp: { msl: MSL } });
    const a = watch(sim.a.connect({ host: B_ADDR, port: 5001, localPort: 5000 }));
    const b = watch(sim.b.connect({ host: A_ADDR, port: 5000, localPort: 5001 }));
    b.socket.on('connect', () => b.socket.write('from B'));
    const connected = await sim.clock.run(() => !(a.events.includes('connect') && b.events.includes('connect')), 10_000);
    expect(connected, sim.trace.join('\n')).toBe(true);
    await sim.clock.sleep(100);
    a.socket.end('from A'); // A closes first; B's socket ends when it reads A's FIN
    const ok = await sim.clock.run(() => !(a.events.includes('close') && b.events.includes('close')), 10_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    await sim.clock.sleep(2 * MSL);

    // Both SYNs cross: each side answers the other's SYN with SYN-ACK from SYN-RECEIVED.
    const open = ['CLOSED>SYN-SENT', 'SYN-SENT>SYN-RECEIVED', 'SYN-RECEIVED>ESTABLISHED'];
    expect(sim.states('a')).toEqual([...open, ...ACTIVE_CLOSE]);
    expect(sim.states('b')).toEqual([...open, ...PASSIVE_CLOSE]);
    expect(Buffer.concat(a.data).toString()).toBe('from B');
    expect(Buffer.concat(b.data).toString()).toBe('from A');
    // No side ever saw its handshake fail or needed a retransmission.
    expect(sim.a.stats()['tcp.retransmit'] ?? 0).toBe(0);
    expect(sim.b.stats()['tcp.retransmit'] ?? 0).toBe(0);
    expectQuiescent(sim);
  });

  it('simultaneous close: both FINs cross, both sides go CLOSING then TIME-WAIT', async () => {
    const sim = createSim({ seed: 4, tcp: { msl: MSL } });
    const server = serve(sim);
    await sim.clock.sleep(1);
    const client = watch(sim.a.connect({ host: B_ADDR, port: 80 }));
    await sim.clock.run(() => !(client.events.includes('connect') && server.length === 1), 10_000);
    await sim.clock.sleep(100);
    client.socket.end();
    server[0]!.socket.end();
    const ok = await sim.clock.run(() => !(client.events.includes('close') && server[0]!.events.includes('close')), 10_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    await sim.clock.sleep(2 * MSL);

    const close = ['ESTABLISHED>FIN-WAIT-1', 'FIN-WAIT-1>CLOSING', 'CLOSING>TIME-WAIT', 'TIME-WAIT>CLOSED'];
    expect(sim.states('a')).toEqual([...ACTIVE_OPEN, ...close]);
    expect(sim.states('b')).toEqual([...PASSIVE_OPEN, ...close]);
    expect(timeWaitDurations(sim, 'a')).toEqual([2 * MSL]);
    expect(timeWaitDurations(sim, 'b')).toEqual([2 * MSL]);
    expectQuiescent(sim);
  });

  for (const resetter of ['client', 'server'] as const) {
    it(`RST: the ${resetter} destroys an established connection; the other side gets ECONNRESET`, async () => {
      const sim = createSim({ seed: 5, tcp: { msl: MSL } });
      const server = serve(sim);
      await sim.clock.sleep(1);
      const client = watch(sim.a.connect({ host: B_ADDR, port: 80 }));
      await sim.clock.run(() => !(client.events.includes('connect') && server.length === 1), 10_000);
      await sim.clock.sleep(100);
      const [killer, victim] = resetter === 'client' ? [client, server[0]!] : [server[0]!, client];
      killer.socket.destroy();
      const ok = await sim.clock.run(() => !(client.events.includes('close') && server[0]!.events.includes('close')), 10_000);
      expect(ok, sim.trace.join('\n')).toBe(true);

      expect(sim.states('a')).toEqual([...ACTIVE_OPEN, 'ESTABLISHED>CLOSED']);
      expect(sim.states('b')).toEqual([...PASSIVE_OPEN, 'ESTABLISHED>CLOSED']);
      expect(victim.events).toEqual([...(victim === client ? ['connect'] : []), 'error ECONNRESET', 'close']);
      // destroy() is no end of stream: no 'end', no error, just 'close' (as net.Socket).
      expect(killer.events).toEqual([...(killer === client ? ['connect'] : []), 'close']);
      expect(sim.a.stats()['tcp.rst.out'] ?? 0).toBe(resetter === 'client' ? 1 : 0);
      expect(sim.b.stats()['tcp.rst.out'] ?? 0).toBe(resetter === 'server' ? 1 : 0);
      expectQuiescent(sim);
    });
  }

  it('connect to a closed port: RST, ECONNREFUSED, and the client is CLOSED at once', async () => {
    const sim = createSim({ seed: 6 });
    const client = watch(sim.a.connect({ host: B_ADDR, port: 81 }));
    const ok = await sim.clock.run(() => !client.events.includes('close'), 10_000);
    expect(ok).toBe(true);
    expect(client.events).toEqual(['error ECONNREFUSED', 'close']);
    expect(sim.states('a')).toEqual(['CLOSED>SYN-SENT', 'SYN-SENT>CLOSED']);
    expect(sim.states('b')).toEqual([]);
    expect(sim.b.stats()['tcp.rst.out']).toBe(1);
    expectQuiescent(sim);
  });
});

describe('giving up', () => {
  it('a SYN that is never answered: synRetries retransmissions with backoff, then ETIMEDOUT', async () => {
    const sim = createSim({ seed: 7, aToB: { loss: 1 }, tcp: { synRetries: 3, initialRto: 1000 } });
    serve(sim);
    await sim.clock.sleep(1);
    const start = sim.clock.now();
    const client = watch(sim.a.connect({ host: B_ADDR, port: 80 }));
    const ok = await sim.clock.run(() => !client.events.includes('close'), 100_000);
    expect(ok).toBe(true);
    expect(client.events).toEqual(['error ETIMEDOUT', 'close']);
    expect(sim.states('a')).toEqual(['CLOSED>SYN-SENT', 'SYN-SENT>CLOSED']);
    // SYN at 0, 1, 3 and 7 s; the last wait is 8 s.
    expect(sim.transitions('a')[1]!.at - start).toBe(1000 + 2000 + 4000 + 8000);
    expect(sim.aOut!.stats.sent).toBe(4);
    expect(sim.states('b')).toEqual([]); // B never heard a thing
    expectQuiescent(sim);
  });

  it('data that is never acknowledged: maxRetries retransmissions, then ETIMEDOUT', async () => {
    const sim = createSim({ seed: 8, aToB: {}, tcp: { maxRetries: 4, minRto: 200 } });
    const server = serve(sim);
    await sim.clock.sleep(1);
    const client = watch(sim.a.connect({ host: B_ADDR, port: 80 }));
    await sim.clock.run(() => !(client.events.includes('connect') && server.length === 1), 10_000);
    sim.aOut!.setOptions({ loss: 1 }); // the path from A to B goes dark
    const sentBefore = sim.aOut!.stats.sent;
    const start = sim.clock.now();
    client.socket.write(randomBytes(5000, 1));
    const ok = await sim.clock.run(() => !client.events.includes('close'), 100_000);
    expect(ok).toBe(true);
    expect(client.events).toEqual(['connect', 'error ETIMEDOUT', 'close']);
    expect(sim.states('a')).toEqual([...ACTIVE_OPEN, 'ESTABLISHED>CLOSED']);
    // A tail loss probe first, 2·SRTT + 2 ms = 2 ms after the flight (the handshake's RTT is 0,
    // RFC 8985 §7.2), which restarts the RTO (§7.3); then RTO 200 ms, doubled after each of the 4
    // retransmissions.
    expect(sim.a.stats()['tcp.tlp.probe']).toBe(1);
    expect(sim.transitions('a')[2]!.at - start).toBe(2 + 200 + 400 + 800 + 1600 + 3200);
    // The initial flight (5000 bytes in 4 segments of 1448), the probe, and one retransmission per timeout.
    expect(sim.aOut!.stats.sent - sentBefore).toBe(4 + 1 + 4);
    expect(sim.a.stats()['tcp.timeout']).toBe(1);
    // B never learns: its connection is still open; it is torn down by hand.
    expect(sim.states('b')).toEqual(PASSIVE_OPEN);
    server[0]!.socket.destroy();
    await sim.clock.sleep(10);
    expectQuiescent(sim);
  });
});

describe('half-close (RFC 9293 §3.6)', () => {
  it('A ends its direction; B keeps sending for a while, then ends too', async () => {
    const sim = createSim({ seed: 9, tcp: { msl: MSL } });
    const toB = randomBytes(50_000, 91);
    const toA = randomBytes(300_000, 92);
    let bGotEnd = false;
    const server = serve(
      sim,
      (w) => {
        w.socket.on('end', () => {
          bGotEnd = true;
          // After A's FIN: keep sending in pieces, then close our direction.
          let off = 0;
          const pump = (): void => {
            while (off < toA.length) {
              const piece = toA.subarray(off, off + 10_000);
              off += piece.length;
              if (!w.socket.write(piece)) {
                w.socket.once('drain', pump);
                return;
              }
            }
            w.socket.end();
          };
          pump();
        });
      },
      { allowHalfOpen: true },
    );
    await sim.clock.sleep(1);
    const client = watch(sim.a.connect({ host: B_ADDR, port: 80, allowHalfOpen: true }));
    client.socket.on('connect', () => client.socket.end(toB));
    const ok = await sim.clock.run(() => !(client.events.includes('close') && server[0]?.events.includes('close')), 60_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    expect(bGotEnd).toBe(true);
    expect(Buffer.concat(server[0]!.data).equals(toB)).toBe(true);
    expect(Buffer.concat(client.data).equals(toA)).toBe(true);
    await sim.clock.sleep(2 * MSL);
    expect(sim.states('a')).toEqual([...ACTIVE_OPEN, ...ACTIVE_CLOSE]);
    expect(sim.states('b')).toEqual([...PASSIVE_OPEN, ...PASSIVE_CLOSE]);
    // A's half: 'finish' (its FIN acknowledged) long before 'end' (B's FIN).
    expect(client.events).toEqual(['connect', 'finish', 'end', 'close']);
    expectQuiescent(sim);
  });
});

describe("a listener's backlog", () => {
  it('bounds the state it holds: without SYN cookies, excess SYNs are dropped and counted, the clients retry and get in once it is drained', async () => {
    const backlog = 2;
    const clients = 10;
    // The dropped clients retry in lockstep (SYN at 1, 3, 7, 15, 31, 63, 127 s ...) and each round
    // lets `backlog` of them in, so they need more SYN retries than the default 6.
    // A 5 ms one-way delay keeps each handshake in SYN-RECEIVED long enough to be seen.
    const sim = createSim({
      seed: 10, aToB: { delayMs: 5 }, bToA: { delayMs: 5 }, tcp: { msl: MSL, synRetries: 8 }, limitsB: { synCookies: false },
    });
    // The listener of the layer itself, so the test decides when to accept.
    const listener = sim.b.tcp.listen(80, backlog);
    await sim.clock.sleep(1);
    const sockets = Array.from({ length: clients }, () => watch(sim.a.connect({ host: B_ADDR, port: 80 })));
    let maxHeld = 0;
    let maxSynQueue = 0;
    let maxAcceptQueue = 0;
    const held = () => {
      maxHeld = Math.max(maxHeld, sim.b.tcp.connectionCount);
      maxSynQueue = Math.max(maxSynQueue, listener.synQueue);
      maxAcceptQueue = Math.max(maxAcceptQueue, listener.acceptQueue.length);
    };
    await sim.clock.run(() => (held(), true), 10_000);
    // While nobody accepts, B holds at most the SYN queue and the accept queue, each bounded by the backlog.
    expect(maxHeld, sim.trace.join('\n')).toBeLessThanOrEqual(2 * backlog);
    expect(listener.acceptQueue.length).toBe(backlog);
    expect(sim.b.stats()['tcp.listen.syn-dropped']).toBeGreaterThanOrEqual(clients - 2 * backlog);

    // Accept (and close) everything from now on: every client gets in eventually.
    const served: number[] = [];
    const drain = () => {
      for (let c = listener.accept(); c; c = listener.accept()) {
        served.push(c.remotePort);
        c.close();
      }
    };
    listener.onAcceptable = () => sim.clock.defer(drain);
    drain();
    const ok = await sim.clock.run(() => (held(), served.length < clients), 600_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    expect(sockets.filter((s) => s.events.includes('connect')).length).toBe(clients);
    expect(maxSynQueue).toBe(backlog);
    expect(maxAcceptQueue).toBe(backlog);
    for (const s of sockets) s.socket.destroy();
    await sim.clock.sleep(10 * MSL);
    sim.b.tcp.unlisten(listener);
    expectQuiescent(sim);
  });
});
