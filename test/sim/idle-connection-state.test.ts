/**
 * What an idle connection holds. A server may hold tens of thousands of idle connections, so
 * state that only some traffic needs is created when that traffic comes: the SACK scoreboard
 * and RACK state with the first segment sent, the D-SACK reporter with the first duplicate.
 */
import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { Connection } from '../../src/tcp/connection.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import type { Stack } from '../../src/stack.js';

/** A server on port 80 of `stack` that counts the bytes it reads; `conn`: the accepted connection. */
function countingServer(stack: Stack): { got: number; conn: Connection | undefined } {
  const srv: { got: number; conn: Connection | undefined } = { got: 0, conn: undefined };
  stack
    .createServer((s) => {
      srv.conn = s.connection;
      s.on('data', (d: Buffer) => {
        srv.got += d.length;
      });
    })
    .listen(80);
  return srv;
}

/** The SACK state a connection holds: [scoreboard/RACK, D-SACK reporter]. */
function sackState(c: Connection): [boolean, boolean] {
  return [c.snd.recovery !== undefined, c.rcv.sack !== undefined];
}

describe('idle connection state', () => {
  it('an established connection that has sent nothing holds no SACK scoreboard, RACK state or D-SACK reporter, though both SYNs agreed to SACK', async () => {
    const sim = createSim({ seed: 3 });
    const { clock, a, b } = sim;
    const accepted: TcpSocket[] = [];
    b.createServer((s) => accepted.push(s)).listen(80);
    const c = a.connect({ host: B_ADDR, port: 80 });
    expect(await clock.run(() => accepted.length === 0 || c.connecting, 5_000), sim.trace.join('\n')).toBe(true);
    await clock.sleep(1_000);
    const client = c.connection!;
    const server = accepted[0]!.connection!;
    expect([client.sackOk, server.sackOk]).toEqual([true, true]);
    expect([sackState(client), sackState(server)]).toEqual([
      [false, false],
      [false, false],
    ]);
  });

  it('a connection that only receives builds no scoreboard; the sender has one, empty once everything is acknowledged', async () => {
    const sim = createSim({ seed: 4 });
    const { clock, a, b } = sim;
    const data = randomBytes(200_000, 5);
    const server = countingServer(b);
    const c = a.connect({ host: B_ADDR, port: 80 }, () => c.write(data));
    expect(await clock.run(() => server.got < data.length, 10_000), sim.trace.join('\n')).toBe(true);
    await clock.sleep(1_000); // the last ACK arrives
    const client = c.connection!;
    expect(client.snd.una).toBe(client.snd.max);
    expect(sackState(client)).toEqual([true, false]);
    expect(client.snd.recovery!.sb.size).toBe(0);
    expect(client.snd.recovery!.pipe).toBe(0);
    expect(sackState(server.conn!)).toEqual([false, false]);
  });

  it('a duplicate segment creates the D-SACK reporter, and the next ACK reports the duplicate (RFC 2883)', async () => {
    // Every packet A sends is duplicated: B sees each data segment twice.
    const sim = createSim({ seed: 6, aToB: { duplicate: 1 } });
    const { clock, a, b } = sim;
    const server = countingServer(b);
    const c = a.connect({ host: B_ADDR, port: 80 }, () => c.write(randomBytes(5_000, 7)));
    expect(await clock.run(() => server.got < 5_000, 10_000), sim.trace.join('\n')).toBe(true);
    await clock.sleep(1_000);
    expect(sackState(server.conn!)[1]).toBe(true);
    expect(b.stats()['tcp.dsack.out']).toBeGreaterThan(0);
    expect(a.stats()['tcp.dsack.in']).toBeGreaterThan(0);
  });
});
