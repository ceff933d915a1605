/**
 * Steps of segment arrival (RFC 9293 §3.10.7.4) in states the packetdrill corpus does not reach, as
 * timelines (test/helpers/script.ts).
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost, simultaneousOpen } from '../helpers/script.js';

describe('a SYN in SYN-RECEIVED (§3.10.7.4 fourth, RFC 5961 §4.2)', () => {
  it('after a simultaneous open (an active OPEN) gets a challenge ACK; the connection stays and completes', async () => {
    const h = scriptHost();
    await simultaneousOpen(h)
      .recv('S 5000:5000(0) win 65535 <mss 1460,wscale 7>') // another SYN, not a retransmission
      .send('. 1:1(0) ack 1')
      .state('SYN-RECEIVED')
      .recv('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .state('ESTABLISHED');
    expect(h.stack.stats()['tcp.syn.challenged']).toBe(1);
  });
});

/** An established connection whose application stopped reading, with 2000 bytes of the peer's unread in its TCB. */
async function unreadData() {
  const h = scriptHost();
  h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() }); // the application stops reading
  const s = script(h)
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
    .recv('. 1:1(0) ack 1 win 512')
    .recv('P. 1:1001(1000) ack 1 win 512')
    .recv('P. 1001:2001(1000) ack 1 win 512');
  await s;
  const conn = h.conn!;
  expect(conn.rcv.buffered).toBeGreaterThan(0);
  expect(h.stack.tcp.memory.used).toBeGreaterThan(0);
  return { h, conn, s: script(h) };
}

describe('a RST ends the connection and gives back its memory (§3.10.7.4 second)', () => {
  it('[limits.reset-flushes] the unread data is flushed with the TCB ("all segment queues should be flushed"): nothing left to read, nothing charged', async () => {
    const { h, conn, s } = await unreadData();
    await s
      .recv('R. 2001:2001(0) ack 1 win 0')
      .state('CLOSED');
    expect(h.log.events).toContain('error ECONNRESET');
    expect(h.stack.tcp.memory.used).toBe(0);
    // A closed TCB may stay reachable a while (the timer heap drops stale entries lazily, an
    // application may keep its socket): it must not keep the peer's bytes alive with it.
    expect(conn.rcv.buffered).toBe(0);
    expect(conn.read()).toBeUndefined();
  });

  it("[limits.abort-flushes] the application's abort flushes them too (§3.10.5), and the peer gets a RST", async () => {
    const { h, conn, s } = await unreadData();
    await s
      .do((h) => h.socket.destroy())
      .send('R. 1:1(0) ack 2001 <*>')
      .state('CLOSED');
    expect(conn.rcv.buffered).toBe(0);
    expect(conn.read()).toBeUndefined();
    expect(h.stack.tcp.memory.used).toBe(0);
  });

  it('a connection that ends normally keeps its unread data for the application to read', async () => {
    const h = scriptHost();
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() });
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512')
      .recv('P. 1:1001(1000) ack 1 win 512')
      .recv('F. 1001:1001(0) ack 1 win 512')
      .send('. 1:1(0) ack 1002 <*>')
      .state('CLOSE-WAIT')
      .do((h) => h.socket.end()) // our half of the close, the data still unread
      .send('F. 1:1(0) ack 1002 <*>')
      .recv('. 1002:1002(0) ack 2 win 512')
      .state('CLOSED')
      .do((h) => h.socket.resume());
    expect(h.received).toEqual(h.peerBytes(1, 1001));
  });
});

describe('at the stack-wide memory limit (§3.10.7.4 seventh)', () => {
  it('new data is refused as a full buffer would refuse it: a duplicate ACK, counted, nothing charged', async () => {
    const h = scriptHost({ limits: { memLimit: 3000 } });
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() }); // the application stops reading
    const s = script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512')
      .recv('P. 1:1001(1000) ack 1 win 512'); // the socket takes this one into its stream buffer
    await s.do((h) => expect(h.stack.tcp.memory.used).toBe(0));
    await script(h)
      .recv('P. 1001:2001(1000) ack 1 win 512')
      .recv('P. 2001:3001(1000) ack 1 win 512')
      .send('. 1:1(0) ack 3001 <*>')
      .recv('P. 3001:4001(1000) ack 1 win 512') // 3000 held: the limit, still allowed
      .recv('P. 4001:4101(100) ack 1 win 512') // past it
      .send('. 1:1(0) ack 4001 <*>');
    expect(h.stack.stats()['tcp.mem.dropped']).toBe(1);
    expect(h.stack.tcp.memory.used).toBe(3000);
  });

  it('data after the peer\'s FIN is dropped as data after a FIN, limit or not: no ACK of its own, not counted as refused for memory', async () => {
    const h = scriptHost({ limits: { memLimit: 3000 } });
    h.listen({ allowHalfOpen: true });
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .recv('. 1:1(0) ack 1 win 512')
      .recv('F. 1:1(0) ack 1 win 512')
      .send('. 1:1(0) ack 2 <*>')
      .state('CLOSE-WAIT')
      .do((h) => h.stack.tcp.memory.charge(3000)) // the budget is spent
      .recv('P. 2:102(100) ack 1 win 512') // beyond the FIN: nothing to take (RFC 9293 §3.10.7.4 seventh)
      .quiet(1000);
    const st = h.stack.stats();
    expect([st['tcp.drop.data-after-fin'], st['tcp.mem.dropped']]).toEqual([1, undefined]);
  });
});
