/**
 * A listener's two queues (RFC 9293 §3.10.7.2 LISTEN; bounded as Linux bounds them): half-open
 * connections in the SYN queue, completed ones in the accept queue, both limited by listen()'s
 * backlog, and the SYN queue also by the layer's maxSynBacklog.
 */
import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/tcp/connection.js';
import { Listener } from '../../src/tcp/listener.js';
import { ACK, RST, SYN } from '../../src/tcp/segment.js';
import type { TcpSegment } from '../../src/tcp/segment.js';
import { TcpState } from '../../src/tcp/state.js';

function seg(flags: number): TcpSegment {
  return { srcPort: 40000, dstPort: 80, seq: 1, ack: 0, dataOffset: 20, flags, window: 65535, checksum: 0, urgentPointer: 0, options: {}, payload: new Uint8Array(0) };
}

/** Just what a listener looks at: the state, and whether the connection counts in its SYN queue. */
function conn(state: TcpState = TcpState.SYN_RECEIVED): Connection {
  return { state, inSynQueue: false, listener: undefined } as unknown as Connection;
}

describe('a listener (RFC 9293 §3.10.7.2)', () => {
  it('opens for a SYN, resets an ACK, ignores a RST and a segment with neither', () => {
    const l = new Listener(80, 4, 256);
    expect([l.segmentArrives(seg(SYN), 0), l.segmentArrives(seg(ACK), 0), l.segmentArrives(seg(RST), 0), l.segmentArrives(seg(0), 0)]).toEqual(['open', 'reset', 'ignore', 'ignore']);
    expect(l.segmentArrives(seg(RST | ACK), 0)).toBe('ignore');
  });

  it('holds at most min(backlog, maxSynBacklog) half-open connections; one that completes makes room', () => {
    for (const [backlog, maxSyn, room] of [[3, 256, 3], [256, 2, 2]] as const) {
      // Without SYN cookies a SYN beyond the queue is dropped (with them it gets a cookie: below).
      const l = new Listener(80, backlog, maxSyn, false);
      const cs: Connection[] = [];
      for (let i = 0; i < room; i++) {
        expect(l.segmentArrives(seg(SYN), 0)).toBe('open');
        const c = conn();
        l.adopt(c);
        cs.push(c);
      }
      expect([backlog, l.synQueue, l.segmentArrives(seg(SYN), 0)]).toEqual([backlog, room, 'queue-full']);
      expect(cs[0]!.inSynQueue).toBe(true);
      expect(cs[0]!.listener).toBe(l);
      expect(l.established(cs[0]!)).toBe(true);
      expect([l.synQueue, cs[0]!.inSynQueue]).toEqual([room - 1, false]);
      // Leaving twice (established, then released) counts once.
      l.leaveSynQueue(cs[0]!);
      expect(l.synQueue).toBe(room - 1);
      expect(l.segmentArrives(seg(SYN), 0)).toBe(backlog <= 2 ? 'queue-full' : 'open');
    }
  });

  it('with SYN cookies, a SYN beyond a full SYN queue gets a cookie; afterwards an ACK is checked as one for a while', () => {
    const l = new Listener(80, 2, 256);
    l.adopt(conn());
    l.adopt(conn());
    expect(l.segmentArrives(seg(ACK), 0)).toBe('reset'); // no cookie sent yet: a stray ACK is reset
    expect(l.segmentArrives(seg(SYN), 1000)).toBe('cookie');
    expect(l.segmentArrives(seg(ACK), 1000)).toBe('check-cookie');
  });

  it('a full accept queue refuses new SYNs until accept() takes one; accept() skips connections that closed meanwhile', () => {
    const l = new Listener(80, 2, 256);
    let told = 0;
    l.onAcceptable = () => told++;
    const a = conn();
    const b = conn();
    l.adopt(a);
    l.adopt(b);
    expect(l.acceptQueueFull).toBe(false);
    l.established(a);
    expect(l.acceptQueueFull).toBe(false);
    l.established(b);
    expect([l.acceptQueueFull, l.synQueue, told, l.segmentArrives(seg(SYN), 0)]).toEqual([true, 0, 2, 'queue-full']);
    (a as { state: TcpState }).state = TcpState.CLOSED; // reset by the peer before accept()
    (b as { state: TcpState }).state = TcpState.ESTABLISHED;
    expect(l.accept()).toBe(b);
    expect(l.accept()).toBeUndefined();
    expect(l.segmentArrives(seg(SYN), 0)).toBe('open');
  });

  it('a closed listener takes no more established connections', () => {
    const l = new Listener(80, 2, 256);
    const c = conn();
    l.adopt(c);
    l.closed = true;
    expect(l.established(c)).toBe(false);
    expect([l.synQueue, l.acceptQueue.length]).toEqual([0, 0]);
  });
});
