/**
 * What the TCP layer reports about itself: the counters `netstack stats` prints (opens, segments
 * and resets out, connections, buffer memory, timers), the transitions it announces (with their
 * causes, and an unsubscribe that works), and a page of the connection list.
 */
import { describe, expect, it } from 'vitest';
import type { TransitionEvent } from '../../src/tcp/layer.js';
import { TcpState } from '../../src/tcp/state.js';
import { passiveOpen, script, scriptHost } from '../helpers/script.js';

describe('the counters', () => {
  it('count opens, every segment and RST sent, live connections, buffered bytes and their peak, and timers', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    await passiveOpen(h)
      .do((h) => h.socket.write(Buffer.alloc(100, 1)))
      .send('P. 1:101(100) ack 1')
      .do((h) => {
        const st = h.stack.stats();
        expect([st['tcp.passive-open'], st['tcp.out'], st['tcp.connections'], st['tcp.mem.bytes'], st['tcp.mem.pressure']]).toEqual([1, 2, 1, 100, 0]);
        expect(st['tcp.timers']).toBeGreaterThan(0); // the retransmission timer, at least
      })
      .recv('. 1:1(0) ack 101 win 65535')
      .do((h) => {
        const st = h.stack.stats();
        expect([st['tcp.mem.bytes'], st['tcp.mem.peak']]).toEqual([0, 100]);
      })
      .do((h) => (h.peerPort = 40001)) // a segment for no connection: RST
      .recv('. 5:5(0) ack 9 win 65535')
      .send('R 9:9(0)');
    const st = h.stack.stats();
    expect([st['tcp.rst.out'], st['tcp.out'], st['tcp.active-open']]).toEqual([1, 3, undefined]);
    expect(st['tcp.bad-option']).toBeUndefined(); // every segment here had well-formed options
    h.peerPort = 40000;
    await script(h).do((h) => h.stack.connect({ host: '10.0.0.2', port: 9 })).send('S 0:0(0) win 65535 <*>');
    expect(h.stack.stats()['tcp.active-open']).toBe(1);
  });
});

describe('transition events', () => {
  it('announce every state change with its cause; an unsubscribed observer hears no more', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    const seen: string[] = [];
    const gone: string[] = [];
    h.stack.onTransition((e: TransitionEvent) => seen.push(`${e.from}>${e.to}: ${e.cause}`));
    const off = h.stack.onTransition((e) => gone.push(e.to));
    h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 <*>')
      .do(() => off())
      .recv('. 1:1(0) ack 1 win 65535');
    expect(gone).toEqual([TcpState.SYN_RECEIVED]);
    expect(seen.at(-1)).toMatch(/^SYN-RECEIVED>ESTABLISHED: /);
  });

  it("a handshake that completes after its listener closed is reset with the cause 'listener closed'", async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    const causes: string[] = [];
    h.stack.onTransition((e) => causes.push(e.cause));
    const server = h.listen();
    await script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 <*>')
      .do(() => server.close())
      .recv('. 1:1(0) ack 1 win 65535')
      .send('R. 1:1(0) ack 1');
    expect(causes.at(-1)).toBe('listener closed');
  });
});

describe('the connection list, a page at a time', () => {
  it('live connections first, then TIME-WAIT; `offset` skips, `limit` stops', async () => {
    const h = scriptHost({ tcp: { timestamps: false, sack: false } });
    h.listen();
    // Three connections from peer ports 40000, 40001, 40002; the first goes to TIME-WAIT.
    let s = passiveOpen(h)
      .do((h) => h.socket.end())
      .send('F. 1:1(0) ack 1')
      .recv('F. 1:1(0) ack 2 win 65535')
      .send('. 2:2(0) ack 2');
    for (const port of [40001, 40002]) s = s.do((h) => (h.peerPort = port)).recv('S 0:0(0) win 65535 <mss 1460>').send('S. 0:0(0) ack 1 <*>').recv('. 1:1(0) ack 1 win 65535');
    await s;
    const page = (limit?: number, offset?: number) => h.stack.tcp.connections(limit, offset).map((c) => `${c.remote.split(':')[1]} ${c.state}`);
    expect(page()).toEqual(['40001 ESTABLISHED', '40002 ESTABLISHED', '40000 TIME-WAIT']);
    expect(page(1)).toEqual(['40001 ESTABLISHED']);
    expect(page(2, 1)).toEqual(['40002 ESTABLISHED', '40000 TIME-WAIT']);
    expect(page(5, 2)).toEqual(['40000 TIME-WAIT']);
    expect(page(2, 0)).toEqual(['40001 ESTABLISHED', '40002 ESTABLISHED']);
  });
});
