/**
 * The watcher: counts the state diagram's arrows, keeps a bounded story per connection from the
 * packets at the stack boundary, forgets closed ones in time, and never throws on what it sees.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { PROTO_TCP } from '../../src/ip/ipv4.js';
import { seededRandom } from '../../src/runtime/random.js';
import { ACK, FIN, PSH, RST, SYN } from '../../src/tcp/segment.js';
import type { TransitionEvent } from '../../src/tcp/layer.js';
import { ladderRows } from '../../src/web/story.js';
import type { TraceEvent, WatchOptions } from '../../src/web/watch.js';
import { Watcher } from '../../src/web/watch.js';
import { ipv4, tcp } from '../helpers/wire.js';

const US = parseIpv4('10.0.0.2')!;
const PEER = parseIpv4('10.0.0.1')!;

/** Just what the watcher uses of a Stack, driven by hand. */
function fakeStack() {
  let now = 0;
  const fns = new Set<(e: TransitionEvent) => void>();
  const stack = {
    addr: US,
    clock: { now: () => now },
    packetTap: undefined as ((p: Uint8Array, d: 'in' | 'out', now: number) => void) | undefined,
    onTransition(fn: (e: TransitionEvent) => void) {
      fns.add(fn);
      return () => fns.delete(fn);
    },
  };
  // Packets differ only in the peer's port: built once per shape, then patched (the watcher
  // does not check checksums, the stack does).
  const shapes = new Map<string, Uint8Array>();
  return {
    stack,
    setNow: (t: number) => (now = t),
    transition(conn: FakeConn, from: string, to: string, cause = 'test') {
      for (const fn of fns) fn({ conn, from, to, cause } as unknown as TransitionEvent);
    },
    packet(dir: 'in' | 'out', port: number, flags: number, seq: number, ack: number, len = 0) {
      const shape = `${dir} ${flags} ${seq} ${ack} ${len}`;
      let template = shapes.get(shape);
      if (!template) {
        const [src, dst, srcPort, dstPort] = dir === 'in' ? [PEER, US, 1, 80] : [US, PEER, 80, 1];
        const seg = tcp({ src, dst, srcPort, dstPort, seq, ack, flags, window: 1000, options: flags & SYN ? { mss: 1460 } : {} }, new Uint8Array(len));
        template = ipv4({ src, dst, protocol: PROTO_TCP }, seg);
        shapes.set(shape, template);
      }
      const p = template.slice();
      const at = dir === 'in' ? 20 : 22;
      p[at] = port >> 8;
      p[at + 1] = port & 0xff;
      stack.packetTap?.(p, dir, now);
    },
  };
}

interface FakeConn {
  localPort: number;
  remoteAddr: number;
  remotePort: number;
  info(): { srtt: number; rto: number; cwnd: number; ssthresh: number };
}

const conn = (port: number): FakeConn => ({ localPort: 80, remoteAddr: PEER, remotePort: port, info: () => ({ srtt: 2, rto: 200, cwnd: 14600, ssthresh: 65535 }) });

/** A whole passive connection: handshake, a request, the peer closes first. */
function passiveConnection(f: ReturnType<typeof fakeStack>, port: number) {
  const c = conn(port);
  f.packet('in', port, SYN, 1000, 0);
  f.transition(c, 'CLOSED', 'LISTEN');
  f.transition(c, 'LISTEN', 'SYN-RECEIVED');
  f.packet('out', port, SYN | ACK, 5000, 1001);
  f.packet('in', port, ACK, 1001, 5001);
  f.transition(c, 'SYN-RECEIVED', 'ESTABLISHED');
  f.packet('in', port, ACK | PSH, 1001, 5001, 50);
  f.packet('out', port, ACK | PSH, 5001, 1051, 100);
  f.packet('in', port, ACK | FIN, 1051, 5101);
  f.transition(c, 'ESTABLISHED', 'CLOSE-WAIT');
  f.transition(c, 'CLOSE-WAIT', 'LAST-ACK');
  f.packet('out', port, ACK | FIN, 5101, 1052);
  f.packet('in', port, ACK, 1052, 5102);
  f.transition(c, 'LAST-ACK', 'CLOSED');
  return c;
}

function watch(opts?: WatchOptions) {
  const f = fakeStack();
  return { f, w: new Watcher(f.stack, opts) };
}

describe('the watcher', () => {
  it('counts every arrow taken, and hands out the ones fired since it was last asked', () => {
    const { f, w } = watch();
    passiveConnection(f, 4000);
    passiveConnection(f, 4001);
    expect(Object.fromEntries(w.arrows)).toEqual({
      'CLOSED>LISTEN': 2,
      'LISTEN>SYN-RECEIVED': 2,
      'SYN-RECEIVED>ESTABLISHED': 2,
      'ESTABLISHED>CLOSE-WAIT': 2,
      'CLOSE-WAIT>LAST-ACK': 2,
      'LAST-ACK>CLOSED': 2,
    });
    expect(w.drainFired().get('LISTEN>SYN-RECEIVED')).toBe(2);
    expect(w.drainFired().size).toBe(0);
  });

  it("counts a listener's child born CLOSED -> SYN-RECEIVED on the figure's LISTEN -> SYN-RECEIVED arrow; its story keeps what happened", () => {
    const { f, w } = watch();
    f.packet('in', 4000, SYN, 1000, 0);
    f.transition(conn(4000), 'CLOSED', 'SYN-RECEIVED', 'SYN to listener :80');
    expect(Object.fromEntries(w.arrows)).toEqual({ 'LISTEN>SYN-RECEIVED': 1 });
    expect(w.story(1)!.transitions.map((t) => `${t.from}>${t.to}`)).toEqual(['CLOSED>SYN-RECEIVED']);
  });

  it("records a connection's segments and transitions in order, from the SYN to CLOSED", () => {
    const { f, w } = watch();
    passiveConnection(f, 4000);
    const s = w.story(1)!;
    expect(s.closedAt).toBe(0);
    expect(w.storyByName('10.0.0.1:4000', '10.0.0.2:80')).toBeUndefined(); // closed: no longer live
    const rows = ladderRows(s).map((r) => (r.kind === 'segment' ? `${r.dir} ${r.flags} ${r.seq}:${r.seq + r.len} ack ${r.ack ?? '-'} [${r.local}|${r.peer}]` : r.kind === 'state' ? `${r.from}>${r.to}` : 'gap'));
    expect(rows).toEqual([
      'in S 0:0 ack - [SYN-RECEIVED|SYN-SENT]',
      'CLOSED>LISTEN',
      'LISTEN>SYN-RECEIVED',
      'out S. 0:0 ack 1 [SYN-RECEIVED|ESTABLISHED]',
      'in . 1:1 ack 1 [ESTABLISHED|ESTABLISHED]',
      'SYN-RECEIVED>ESTABLISHED',
      'in P. 1:51 ack 1 [ESTABLISHED|ESTABLISHED]',
      'out P. 1:101 ack 51 [ESTABLISHED|ESTABLISHED]',
      'in F. 51:51 ack 101 [LAST-ACK|FIN-WAIT-1]',
      'ESTABLISHED>CLOSE-WAIT',
      'CLOSE-WAIT>LAST-ACK',
      'out F. 101:101 ack 52 [LAST-ACK|TIME-WAIT]',
      'in . 52:52 ack 102 [CLOSED|TIME-WAIT]',
      'LAST-ACK>CLOSED',
    ]);
  });

  it('finds a live story by the endpoints /connections lists it under, and none for any other or a malformed one', () => {
    const { f, w } = watch();
    f.packet('in', 4000, SYN, 1000, 0);
    f.transition(conn(4000), 'CLOSED', 'SYN-RECEIVED');
    f.packet('in', 4001, SYN, 1000, 0);
    expect(w.storyByName('10.0.0.1:4000', '10.0.0.2:80')?.id).toBe(1);
    expect(w.storyByName('10.0.0.1:4001', '10.0.0.2:80')?.id).toBe(2); // a SYN's story, not yet claimed
    for (const [remote, local] of [
      ['10.0.0.1:4002', '10.0.0.2:80'],
      ['10.0.0.9:4000', '10.0.0.2:80'],
      ['10.0.0.1:4000', '10.0.0.2:81'],
      ['10.0.0.1:4000', '10.0.0.3:80'],
      ['10.0.0.1:99999', '10.0.0.2:80'],
      ['10.0.0.1', '10.0.0.2:80'],
      [':4000', '10.0.0.2:80'],
      ['10.0.0.1:', '10.0.0.2:80'],
      ['10.0.0.256:4000', '10.0.0.2:80'],
      ['10.0.0.0001:4000', '10.0.0.2:80'],
      ['10.0.0.1.1:4000', '10.0.0.2:80'],
      ['10.0..1:4000', '10.0.0.2:80'],
      ['10.0.0.1:4000:1', '10.0.0.2:80'],
      ['10.0.0.1:040000', '10.0.0.2:80'],
      [' 10.0.0.1:4000', '10.0.0.2:80'],
      ['garbage', 'garbage'],
    ]) expect(w.storyByName(remote!, local!), `${remote} ${local}`).toBeUndefined();
  });

  it('keeps 10,000 connections within its bounds: closed stories expire, memory is counted and bounded', () => {
    const { f, w } = watch({ maxClosed: 500, closedRetentionMs: 60_000 });
    for (let i = 0; i < 10_000; i++) passiveConnection(f, 10_000 + i);
    f.setNow(1);
    w.prune(1);
    expect(w.storyCount).toBe(500);
    expect(w.counters.storiesDropped).toBe(9_500);
    const perStory = w.bytes() / w.storyCount;
    expect(perStory).toBeGreaterThan(100);
    expect(perStory).toBeLessThan(3_000);
    f.setNow(60_002);
    w.prune(60_002);
    expect(w.storyCount).toBe(0);
  });

  it('opens no more than maxStories live stories and counts the connections left untracked', () => {
    const { f, w } = watch({ maxStories: 3 });
    for (let i = 0; i < 5; i++) f.packet('in', 4000 + i, SYN, 1, 0);
    expect(w.storyCount).toBe(3);
    expect(w.counters.untracked).toBe(2);
  });

  it('holds at most maxUnattached stories of SYNs no connection claimed (a cookie-answered flood); a connection still gets its story', () => {
    const { f, w } = watch({ maxUnattached: 4 });
    for (let i = 0; i < 10; i++) f.packet('in', 5000 + i, SYN, 1, 0); // spoofed SYNs answered with cookies
    expect([w.storyCount, w.counters.untracked]).toEqual([4, 6]);
    // A real connection whose SYN found no room: its first transition opens its story.
    const c = conn(6000);
    f.packet('in', 6000, SYN, 1000, 0);
    f.transition(c, 'CLOSED', 'SYN-RECEIVED');
    expect(w.storyCount).toBe(5);
    // Claimed or closed stories leave room again.
    f.packet('out', 5000, RST | ACK, 0, 2);
    f.packet('in', 6001, SYN, 1, 0);
    expect(w.storyCount).toBe(6);
  });

  it('closes the story of a SYN answered by RST at once, and one that never got a connection after orphanMs', () => {
    const { f, w } = watch({ orphanMs: 1000 });
    f.packet('in', 4000, SYN, 1, 0);
    f.packet('out', 4000, RST | ACK, 0, 2);
    expect(w.story(1)!.closedAt).toBe(0);
    f.packet('in', 4001, SYN, 1, 0);
    w.prune(500);
    expect(w.story(2)!.closedAt).toBeUndefined();
    w.prune(1001);
    expect(w.story(2)!.closedAt).toBe(1001);
  });

  it('closes orphans that expire together oldest first, so the closed list and its bound keep their order', () => {
    const { f, w } = watch({ orphanMs: 1000, maxClosed: 10 });
    for (let i = 0; i < 30; i++) f.packet('in', 5000 + i * 7, SYN, 1, 0);
    w.prune(1001);
    // Newest first; the 20 oldest went over the bound of 10.
    expect(w.closedStories().map((s) => s.id)).toEqual(Array.from({ length: 10 }, (_, i) => 30 - i));
    expect(w.story(20)).toBeUndefined();
  });

  it('ignores segments of connections it never saw open (counted), and packets not for the stack', () => {
    const { f, w } = watch();
    f.packet('in', 4000, ACK, 1, 1);
    expect(w.storyCount).toBe(0);
    expect(w.counters.unmatched).toBe(1);
  });

  it('starts a new story for a SYN that reuses a 4-tuple in TIME-WAIT; the old connection keeps its own', () => {
    const { f, w } = watch();
    const old = conn(4000);
    f.packet('out', 4000, SYN, 1, 0);
    f.transition(old, 'CLOSED', 'SYN-SENT');
    f.transition(old, 'SYN-SENT', 'ESTABLISHED');
    f.transition(old, 'ESTABLISHED', 'FIN-WAIT-1');
    f.transition(old, 'FIN-WAIT-1', 'FIN-WAIT-2');
    f.transition(old, 'FIN-WAIT-2', 'TIME-WAIT');
    f.packet('in', 4000, SYN, 9000, 0);
    const fresh = conn(4000);
    f.transition(old, 'TIME-WAIT', 'CLOSED', 'new SYN');
    f.transition(fresh, 'CLOSED', 'LISTEN');
    expect(w.storyCount).toBe(2);
    expect(w.story(1)!.transitions.map((t) => t.to).at(-1)).toBe('CLOSED');
    expect(w.story(2)!.transitions.map((t) => t.to)).toEqual(['LISTEN']);
    expect(w.story(2)!.segments.total).toBe(1);
  });

  it('streams transitions to trace subscribers, and segments only to verbose ones', () => {
    const { f, w } = watch();
    const plain: TraceEvent[] = [];
    const verbose: TraceEvent[] = [];
    const off = w.onTrace((e) => plain.push(e), false);
    w.onTrace((e) => verbose.push(e), true);
    passiveConnection(f, 4000);
    expect(plain.map((e) => e.type === 'transition' && `${e.conn}  ${e.from} -> ${e.to}`)).toEqual([
      '10.0.0.1:4000 > 10.0.0.2:80  CLOSED -> LISTEN',
      '10.0.0.1:4000 > 10.0.0.2:80  LISTEN -> SYN-RECEIVED',
      '10.0.0.1:4000 > 10.0.0.2:80  SYN-RECEIVED -> ESTABLISHED',
      '10.0.0.1:4000 > 10.0.0.2:80  ESTABLISHED -> CLOSE-WAIT',
      '10.0.0.1:4000 > 10.0.0.2:80  CLOSE-WAIT -> LAST-ACK',
      '10.0.0.1:4000 > 10.0.0.2:80  LAST-ACK -> CLOSED',
    ]);
    expect(verbose).toHaveLength(6 + 8);
    expect(verbose[0]).toEqual({ type: 'segment', t: 0, conn: '10.0.0.1:4000 > 10.0.0.2:80', dir: 'in', segment: 'S 1000:1000(0) win 1000 <mss 1460>' });
    off();
    passiveConnection(f, 4001);
    expect(plain).toHaveLength(6);
    // The trace's own connection: its transitions show, its segments do not (they would feed
    // the trace forever).
    verbose.length = 0;
    const unquiet = w.quietTrace('10.0.0.1:4002');
    passiveConnection(f, 4002);
    expect(verbose.map((e) => e.type)).toEqual(Array(6).fill('transition'));
    unquiet();
    passiveConnection(f, 4003);
    expect(verbose).toHaveLength(6 + 14);
  });

  it('never throws on garbage at the boundary, and the stack hook comes off on detach', () => {
    const { f, w } = watch();
    const rand = seededRandom(7);
    for (let i = 0; i < 20_000; i++) {
      const p = new Uint8Array(Math.floor(rand() * 80));
      for (let j = 0; j < p.length; j++) p[j] = Math.floor(rand() * 256);
      // Half of them look like IPv4 + TCP to the stack, so the parser behind is exercised.
      if (i % 2 === 0 && p.length >= 20) {
        p[0] = 0x45;
        p[9] = PROTO_TCP;
        p[6] = 0;
        p[7] = 0;
        p[2] = p.length >> 8;
        p[3] = p.length & 0xff;
        p.set([10, 0, 0, 2], 16);
      }
      f.stack.packetTap!(p, 'in', i);
    }
    expect(w.counters.errors).toBe(0);
    expect(w.counters.unparsed + w.counters.unmatched + w.counters.segments).toBeGreaterThan(0);
    w.detach();
    expect(f.stack.packetTap).toBeUndefined();
  });
});
