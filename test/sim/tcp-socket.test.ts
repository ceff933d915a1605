/**
 * Node idioms on TcpSocket/TcpServer that code written for net.Socket relies on, over two
 * simulated stacks.
 */
import { describe, expect, it } from 'vitest';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { A_ADDR, B_ADDR, createSim } from '../helpers/sim.js';
import type { Sim } from '../helpers/sim.js';

/** B echoes everything back and ends when the client ends. */
function echoServer(sim: Sim): { received: Buffer[] } {
  const received: Buffer[] = [];
  sim.b
    .createServer((s) => {
      s.on('data', (d: Buffer) => received.push(d));
      s.on('error', () => {}); // a client that destroys its socket resets this one
      s.pipe(s);
    })
    .listen(7);
  return { received };
}

function collect(socket: TcpSocket) {
  const out = { data: [] as Buffer[], events: [] as string[] };
  socket.on('data', (d: Buffer) => out.data.push(d));
  for (const ev of ['connect', 'end', 'finish', 'close'] as const) socket.on(ev, () => out.events.push(ev));
  socket.on('error', (e: Error & { code?: string }) => out.events.push(`error ${e.code}`));
  return out;
}

describe('TcpSocket: net.Socket idioms', () => {
  it('connect(...).end(data): data written before the handshake completes is sent, then FIN', async () => {
    const sim = createSim({ seed: 1, tcp: { msl: 1000 } });
    const server = echoServer(sim);
    await sim.clock.sleep(1);
    const c = sim.a.connect({ host: B_ADDR, port: 7 });
    const out = collect(c);
    c.end('hello, early');
    const ok = await sim.clock.run(() => !out.events.includes('close'), 10_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    expect(Buffer.concat(server.received).toString()).toBe('hello, early');
    expect(Buffer.concat(out.data).toString()).toBe('hello, early');
    expect(out.events).toEqual(['connect', 'finish', 'end', 'close']);
  });

  it('write() before the handshake completes is sent once connected', async () => {
    const sim = createSim({ seed: 2 });
    const server = echoServer(sim);
    await sim.clock.sleep(1);
    const c = sim.a.connect({ host: B_ADDR, port: 7 });
    const out = collect(c);
    c.write('a');
    c.write('b');
    await sim.clock.run(() => Buffer.concat(out.data).length < 2, 10_000);
    expect(Buffer.concat(server.received).toString()).toBe('ab');
    c.destroy();
    await sim.clock.sleep(10);
  });

  it('destroy() while connecting: no error, close, and the SYN-SENT connection is gone', async () => {
    const sim = createSim({ seed: 3, aToB: { delayMs: 50 }, bToA: { delayMs: 50 } });
    echoServer(sim);
    await sim.clock.sleep(1);
    const c = sim.a.connect({ host: B_ADDR, port: 7 });
    const out = collect(c);
    await sim.clock.sleep(10);
    c.destroy();
    await sim.clock.sleep(1000);
    expect(out.events).toEqual(['close']);
    expect(sim.a.connections()).toEqual([]);
    expect(sim.a.tcp.nextDeadline()).toBe(Infinity);
  });

  it('addresses, ports and byte counters', async () => {
    const sim = createSim({ seed: 4 });
    let accepted: TcpSocket | undefined;
    sim.b
      .createServer((s) => {
        accepted = s;
        s.on('error', () => {}); // the client destroys its end: RST
        s.resume();
      })
      .listen(8080);
    await sim.clock.sleep(1);
    const c = sim.a.connect({ host: B_ADDR, port: 8080, localPort: 40001 });
    c.write(Buffer.alloc(1234));
    await sim.clock.run(() => (accepted?.bytesRead ?? 0) < 1234, 10_000);
    expect(c.remoteAddress).toBe(B_ADDR);
    expect(c.remotePort).toBe(8080);
    expect(c.localAddress).toBe(A_ADDR);
    expect(c.localPort).toBe(40001);
    expect(c.bytesWritten).toBe(1234);
    expect(accepted!.remoteAddress).toBe(A_ADDR);
    expect(accepted!.remotePort).toBe(40001);
    expect(accepted!.bytesRead).toBe(1234);
    c.destroy();
    await sim.clock.sleep(10);
  });

  it('setTimeout fires after the idle time (virtual), and activity postpones it', async () => {
    const sim = createSim({ seed: 5 });
    echoServer(sim);
    await sim.clock.sleep(1);
    const c = sim.a.connect({ host: B_ADDR, port: 7 });
    await sim.clock.run(() => c.connecting, 10_000);
    const start = sim.clock.now();
    let firedAt = 0;
    c.setTimeout(5000, () => (firedAt = sim.clock.now()));
    await sim.clock.sleep(3000);
    c.write('ping'); // activity: the idle timer starts over
    await sim.clock.run(() => firedAt === 0, 20_000);
    expect(firedAt - start).toBe(3000 + 5000);
    c.destroy();
    await sim.clock.sleep(10);
  });

  it('a second listen() on the same port fails with EADDRINUSE; connecting from a used local port too', async () => {
    const sim = createSim({ seed: 6 });
    sim.b.createServer((s) => s.on('error', () => {})).listen(9);
    const errors: string[] = [];
    sim.b
      .createServer(() => {})
      .on('error', (e: Error & { code?: string }) => errors.push(e.code!))
      .listen(9);
    await sim.clock.sleep(1);
    expect(errors).toEqual(['EADDRINUSE']);
    const c1 = sim.a.connect({ host: B_ADDR, port: 9, localPort: 50000 });
    const c2 = sim.a.connect({ host: B_ADDR, port: 9, localPort: 50000 });
    const out2 = collect(c2);
    await sim.clock.sleep(10);
    expect(out2.events).toEqual(['error EADDRINUSE', 'close']);
    c1.destroy();
    await sim.clock.sleep(10);
  });
});

describe('TcpServer: net.Server idioms', () => {
  it("listen(0) picks a free port; close() refuses new connections and emits 'close' once the last socket closes", async () => {
    const sim = createSim({ seed: 7, tcp: { msl: 1000 } });
    const accepted: TcpSocket[] = [];
    const server = sim.b.createServer((s) => {
      accepted.push(s);
      s.on('error', () => {});
      s.resume(); // (a stream nobody reads never sees its 'end', and never closes: as net.Socket)
    });
    let listening = false;
    server.listen(0, () => (listening = true));
    await sim.clock.sleep(1);
    expect(listening).toBe(true);
    const port = server.address()!.port;
    expect(port).toBeGreaterThanOrEqual(49152);
    expect(server.address()).toEqual({ address: B_ADDR, family: 'IPv4', port });

    const first = collect(sim.a.connect({ host: B_ADDR, port }));
    await sim.clock.run(() => accepted.length === 0, 10_000);
    let closed = false;
    server.close(() => (closed = true));
    const second = collect(sim.a.connect({ host: B_ADDR, port }));
    await sim.clock.run(() => !second.events.includes('close'), 10_000);
    expect(second.events).toEqual(['error ECONNREFUSED', 'close']);
    expect(closed).toBe(false); // the first connection is still open
    first.data.length = 0;
    accepted[0]!.end('bye');
    await sim.clock.run(() => !closed, 10_000);
    expect(closed).toBe(true);
    expect(Buffer.concat(first.data).toString()).toBe('bye');
  });
});
