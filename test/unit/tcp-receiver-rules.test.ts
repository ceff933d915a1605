/**
 * Receiver rules the packetdrill corpus does not pin, as timelines (test/helpers/script.ts): the
 * bound on the delayed-ACK time whatever the configuration, and what in-order data costs in memory.
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost } from '../helpers/script.js';
import type { ScriptHost } from '../helpers/script.js';

function open(h: ScriptHost) {
  return script(h)
    .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
    .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
    .recv('. 1:1(0) ack 1 win 512');
}

describe('the delayed ACK', () => {
  it('waits at most 200 ms (Linux TCP_DELACK_MAX) even when configured longer, because a peer RTO may be that short', async () => {
    const h = scriptHost({ tcp: { delayedAckMs: 500 } });
    h.listen();
    await open(h).recv('P. 1:101(100) ack 1 win 512').quiet(199).after(1).send('. 1:1(0) ack 101');
  });
});

describe('unread in-order data', () => {
  it('small segments are joined into one buffer while the two together hold at most 2048 bytes, so neighbours always hold more', async () => {
    const h = scriptHost();
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() }); // the socket takes the first segment, then stops reading
    await open(h)
      .recv('P. 1:1025(1024) ack 1 win 512')
      .recv('P. 1025:2049(1024) ack 1 win 512')
      .recv('P. 2049:3073(1024) ack 1 win 512') // with the one before: 2048, joined
      .send('. 1:1(0) ack 3073')
      .recv('P. 3073:4097(1024) ack 1 win 512') // would make 3072: a buffer of its own
      .after(40)
      .send('. 1:1(0) ack 4097');
    expect([h.conn!.rcvBuffered, h.conn!.rcv.chunks]).toEqual([3072, 2]);
  });
});

describe('under memory pressure (the stack-wide budget past 3/4 of its limit)', () => {
  it('out-of-order data is not kept, and what was held goes (Linux tcp_prune_ofo_queue): the ACK after the gap fills stops there', async () => {
    const h = scriptHost({ limits: { memLimit: 8000 } }); // pressure from 6000 bytes held
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() }); // the socket takes the first segment, then stops reading
    const s = open(h)
      .recv('P. 1:1001(1000) ack 1 win 512')
      .after(40)
      .send('. 1:1(0) ack 1001')
      .recv('P. 8001:9001(1000) ack 1 win 512') // held out of order
      .send('. 1:1(0) ack 1001')
      .recv('P. 10001:11001(1000) ack 1 win 512') // held too: 2000 bytes out of order
      .send('. 1:1(0) ack 1001');
    for (let at = 1001; at < 5001; at += 1000) s.recv(`P. ${at}:${at + 1000}(1000) ack 1 win 512`).send(`. 1:1(0) ack ${at + 1000} <*>`);
    await s
      .do((h) => expect([h.stack.tcp.memory.used, h.stack.tcp.memory.underPressure]).toEqual([6000, true]))
      .recv('P. 9001:10001(1000) ack 1 win 512') // not kept, and what is held goes
      .send('. 1:1(0) ack 5001')
      .recv('P. 12001:13001(1000) ack 1 win 512') // not kept; nothing left to prune
      .send('. 1:1(0) ack 5001')
      .recv('P. 5001:6001(1000) ack 1 win 512')
      .recv('P. 6001:7001(1000) ack 1 win 512') // nothing waits beyond: ACKed as usual
      .recv('P. 7001:8001(1000) ack 1 win 512')
      .send('. 1:1(0) ack 8001 <*>');
    const st = h.stack.stats();
    expect([st['tcp.mem.ooo-pruned'], st['tcp.ooo.dropped'], h.stack.tcp.memory.used]).toEqual([1, 2, 7000]);
  });
});

describe('the receive window under memory pressure', () => {
  it('an autotuned window falls back to the initial buffer for what is advertised from then on; the edge already offered stays (RFC 9293 §3.8.6.2.2)', async () => {
    // A 40,000-byte budget: pressure from 30,000. Our own unsent data will take 31,000 of it.
    const h = scriptHost({ tcp: { initialRcvBuf: 4000, rcvBuf: 40000 }, limits: { memLimit: 40000 } });
    h.listen();
    let s = script(h)
      .recv('S 0:0(0) win 65535 <mss 1000>')
      .send('S. 0:0(0) ack 1 win 4000 <mss 1460>')
      .after(100)
      .recv('. 1:1(0) ack 1 win 65535'); // SRTT 100 ms
    const seg = (i: number, win = 65535) => `P. ${1 + i * 1000}:${1001 + i * 1000}(1000) ack 1 win ${win}`;
    // The reader keeps up: once a round trip has passed, autotuning doubles the buffer to 8000.
    s = s.recv(seg(0)).recv(seg(1)).send('. 1:1(0) ack 2001 win 4000').recv(seg(2)).recv(seg(3)).send('. 1:1(0) ack 4001 win 4000');
    s = s.after(100).recv(seg(4)).send('. 1:1(0) ack 5001 win 8000').recv(seg(5)).recv(seg(6)).send('. 1:1(0) ack 7001 win 8000');
    s = s.recv(seg(7)).recv(seg(8)).send('. 1:1(0) ack 9001 win 8000'); // the right edge is now 17001
    // The peer closes its window; our application writes 31,000 bytes that cannot leave: pressure.
    s = s
      .recv('. 9001:9001(0) ack 1 win 0')
      .do((h) => {
        h.conn!.send(new Uint8Array(31000));
        h.stack.kick();
        expect(h.stack.tcp.memory.underPressure).toBe(true);
      });
    // The edge offered (17001) stays, but is not moved on by an 8000-byte buffer any more: the
    // window shrinks toward it, then moves with the initial 4000.
    await s
      .recv(seg(9, 0))
      .recv(seg(10, 0))
      .send('. 1:1(0) ack 11001 win 6000')
      .recv(seg(11, 0))
      .recv(seg(12, 0))
      .send('. 1:1(0) ack 13001 win 4000')
      .recv(seg(13, 0))
      .recv(seg(14, 0))
      .send('. 1:1(0) ack 15001 win 4000');
    expect(h.stack.stats()['tcp.mem.window-shrunk']).toBe(1); // counted once, when it fell back
  });
});

describe('window updates after the application reads (receiver SWS avoidance, RFC 1122 §4.2.3.3)', () => {
  const read = (h: ScriptHost) => {
    h.conn!.read(); // the application takes one chunk (RECEIVE, §3.10.3)
    h.stack.kick();
  };

  /**
   * A 5840-byte buffer (4 segments), no window scaling: the window moves in steps of min(half the
   * buffer, MSS). The socket takes the first segment, then stops reading; three more fill the
   * buffer until the peer knows a window of one MSS.
   */
  function fullBuffer() {
    const h = scriptHost({ tcp: { rcvBuf: 5840, initialRcvBuf: 5840 } });
    h.listen({ highWaterMark: 1, onConnection: (s) => s.pause() });
    const s = script(h)
      .recv('S 0:0(0) win 65535 <mss 1460>')
      .send('S. 0:0(0) ack 1 win 5840 <mss 1460>')
      .recv('. 1:1(0) ack 1 win 65535')
      .recv('P. 1:1461(1460) ack 1 win 65535') // taken by the socket
      .recv('P. 1461:2921(1460) ack 1 win 65535')
      .send('. 1:1(0) ack 2921 win 4380')
      .recv('P. 2921:4381(1460) ack 1 win 65535')
      .recv('P. 4381:5841(1460) ack 1 win 65535')
      .send('. 1:1(0) ack 5841 win 1460'); // one MSS left open
    return s;
  }

  it('none while the window the peer knows is at least one MSS and would grow by less than half the buffer', async () => {
    await fullBuffer()
      .do(read) // 2920 free, but the peer still has one MSS, and 1460 more is less than half the buffer
      .quiet(100);
  });

  it('small reads add up: once the window we can offer exceeds the one the peer knows by half the buffer, an update goes out', async () => {
    await fullBuffer()
      .do(read) // we could offer 2920: 1460 more than the peer knows, less than half the buffer
      .quiet(10)
      .do(read) // 4380: 2920 more, half the buffer
      .send('. 1:1(0) ack 5841 win 4380');
  });
});

describe('the ACK of in-order data after an out-of-order segment that was not kept', () => {
  it('is delayed as usual: nothing is held beyond it (as Linux, whose out-of-order queue is then empty)', async () => {
    const h = scriptHost({ tcp: { oooMaxBytes: 0 } }); // an out-of-order queue that keeps nothing
    h.listen();
    await open(h)
      .recv('P. 101:201(100) ack 1 win 512') // not kept
      .send('. 1:1(0) ack 1')
      .recv('P. 1:101(100) ack 1 win 512')
      .quiet(39)
      .after(1)
      .send('. 1:1(0) ack 101');
    expect(h.stack.stats()['tcp.ooo.dropped']).toBe(1);
  });
});
