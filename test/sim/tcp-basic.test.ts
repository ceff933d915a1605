import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { TcpSocket } from '../../src/tcp/socket.js';

describe('tcp over a perfect in-memory link', () => {
  it("connects, transfers both ways and closes (client closes first)", async () => {
    const sim = createSim({ seed: 1 });
    const { clock, a, b } = sim;
    const toServer = randomBytes(300_000, 11);
    const toClient = randomBytes(200_000, 12);
    const serverGot: Buffer[] = [];
    const clientGot: Buffer[] = [];
    let serverEnded = false;
    let clientClosed = false;
    b.createServer((s: TcpSocket) => {
      s.on('data', (d: Buffer) => serverGot.push(d));
      s.on('end', () => {
        serverEnded = true;
      });
      s.end(toClient);
    }).listen(80);
    await clock.sleep(1);
    const c = a.connect({ host: B_ADDR, port: 80 });
    c.on('data', (d: Buffer) => clientGot.push(d));
    c.on('close', () => {
      clientClosed = true;
    });
    c.on('connect', () => c.end(toServer));
    const ok = await clock.run(() => !(serverEnded && clientClosed), 10_000);
    expect(ok, sim.trace.join('\n')).toBe(true);
    expect(Buffer.concat(serverGot).equals(toServer)).toBe(true);
    expect(Buffer.concat(clientGot).equals(toClient)).toBe(true);
    // Both sides closed first (simultaneous close): both hold TIME-WAIT, counted per state.
    expect(a.connectionStates()).toEqual({ 'TIME-WAIT': 1 });
    expect(b.connectionStates()).toEqual({ 'TIME-WAIT': 1 });
    expect(a.connections().map((c) => c.state)).toEqual(['TIME-WAIT']);
    await clock.sleep(200_000);
    expect(a.connections()).toEqual([]);
    expect(b.connections()).toEqual([]);
    expect(a.connectionStates()).toEqual({});
    expect(b.connectionStates()).toEqual({});
    // Both close right after connecting. Receive windows start at 64 KiB (autotuning), so A's
    // 300 KB take more round trips than B's 200 KB: A's FIN crosses B's (CLOSING), B's ACK comes back first.
    expect(sim.states('a'), sim.trace.join('\n')).toEqual([
      'CLOSED>SYN-SENT',
      'SYN-SENT>ESTABLISHED',
      'ESTABLISHED>FIN-WAIT-1',
      'FIN-WAIT-1>CLOSING',
      'CLOSING>TIME-WAIT',
      'TIME-WAIT>CLOSED',
    ]);
    expect(sim.states('b'), sim.trace.join('\n')).toEqual([
      'CLOSED>SYN-RECEIVED',
      'SYN-RECEIVED>ESTABLISHED',
      'ESTABLISHED>FIN-WAIT-1',
      'FIN-WAIT-1>FIN-WAIT-2',
      'FIN-WAIT-2>TIME-WAIT',
      'TIME-WAIT>CLOSED',
    ]);
  });
});
