/**
 * The watcher: the live view's eyes on a running stack. It sees every IPv4 packet at the
 * stack's boundary (Stack.packetTap: received ones before processing, sent ones as they
 * leave) and every state transition (Stack.onTransition), and keeps:
 *   - how often each arrow of the state diagram was taken (and which fired since last asked),
 *   - per connection a Story (bounded segment records, samples, transitions), kept after the
 *     connection closed for a bounded time so a short curl can still be opened,
 *   - an estimate of the memory all that holds.
 * TCP is not touched: segments are parsed here from the bytes, only while a watcher is attached.
 */
import type { Ipv4Addr } from '../ip/addr.js';
import { formatIpv4 } from '../ip/addr.js';
import { PROTO_TCP } from '../ip/ipv4.js';
import type { Stack } from '../stack.js';
import type { TransitionEvent } from '../tcp/layer.js';
import type { TcpSegment } from '../tcp/segment.js';
import { ACK, RST, SYN, formatOptions, formatSegment, parseTcp } from '../tcp/segment.js';
import type { SampleSource, StoryLimits } from './story.js';
import { DEFAULT_STORY_LIMITS, Story } from './story.js';
import { FreshMap } from '../runtime/fresh-map.js';
import { ConnectionTable } from '../tcp/conntable.js';

export interface WatchOptions {
  limits?: Partial<StoryLimits>;
  /** Stories of live connections at most; connections beyond get none (counted). */
  maxStories?: number;
  /** How long a closed connection's story stays openable (ms). */
  closedRetentionMs?: number;
  /** Closed stories kept at most (the oldest go first). */
  maxClosed?: number;
  /** A story that never got a connection (a SYN answered by RST) is closed after this (ms). */
  orphanMs?: number;
  /**
   * Stories opened by a SYN that has no connection yet, at most. A SYN flood answered with SYN
   * cookies creates no connection, so without this bound every spoofed SYN would hold a story
   * until `orphanMs` (about 3.5 KB each: 20,000 of them were +70 MB of RSS in a 3-s hping3 flood).
   */
  maxUnattached?: number;
}

/** One line for `netstack trace`: a transition, or (verbose) a segment. */
export type TraceEvent =
  | { type: 'transition'; t: number; conn: string; from: string; to: string; cause: string }
  | { type: 'segment'; t: number; conn: string; dir: 'in' | 'out'; segment: string };

/** The part of a TCP connection the watcher reads (TCP's Connection has it). */
interface WatchedConnection {
  readonly localPort: number;
  readonly remoteAddr: number;
  readonly remotePort: number;
  info(fmt: (a: number) => string): SampleSource;
}

const NO_ADDRESS = (): string => '';

/** An arrow of the state diagram, "FROM>TO": how often it was taken, and since the last drain. */
interface Arrow {
  readonly name: string;
  taken: number;
  fired: number;
}

/**
 * "a.b.c.d:port" as /connections spells an endpoint, as [address, port], or undefined. By hand,
 * not by regex: the table asks for every row it lists (10,000 rows a second per viewer).
 */
function splitEndpoint(text: string): [Ipv4Addr, number] | undefined {
  let addr = 0;
  let value = 0;
  let digits = 0;
  let part = 0; // 0-3: the address's octets; 4: the port
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      value = value * 10 + (c - 0x30);
      if (++digits > (part < 4 ? 3 : 5)) return undefined;
    } else if ((c === 0x2e && part < 3) || (c === 0x3a && part === 3)) {
      if (digits === 0 || value > 255) return undefined;
      addr = addr * 256 + value;
      part++;
      value = 0;
      digits = 0;
    } else return undefined;
  }
  return part === 4 && digits > 0 && value <= 0xffff ? [addr, value] : undefined;
}

export class Watcher {
  /** Every arrow taken so far, in the order first taken; counted in place, so counting a
   * transition looks up two short maps and writes two numbers (no Map.set per transition). */
  private readonly arrowList: Arrow[] = [];
  /** Live stories by 4-tuple, looked up for every packet: the table TCP keeps its connections
   * in (tcp/conntable.ts), which compares the numbers in place, so a lookup builds no key (a
   * template-string key per packet was ~5% of `netstack up`'s new-connection path). Keyed by a
   * random secret as TCP's is, so a peer cannot aim its tuples at one run of slots. */
  private readonly live = new ConnectionTable<Story>((Math.random() * 0x1_0000_0000) | 0);
  private bytesCache = 0;
  // FreshMaps, not Maps: a story per connection comes and goes (runtime/fresh-map.ts says why).
  private readonly byId = new FreshMap<number, Story>();
  /** Story by TCP connection object until the connection reaches CLOSED (a FreshMap, not a
   * WeakMap: a WeakMap of thousands of entries costs the garbage collector more). */
  private readonly byConn = new FreshMap<object, Story>();
  private closedQueue: Story[] = [];
  private nextId = 1;
  private readonly limits: StoryLimits;
  private readonly maxStories: number;
  private readonly closedRetentionMs: number;
  private readonly maxClosed: number;
  private readonly maxUnattached: number;
  /** Live stories opened by a packet that no connection has claimed yet (Story.unattached). */
  private unattached = 0;
  private readonly orphanMs: number;
  private readonly traceFns = new Set<(e: TraceEvent) => void>();
  private verboseCount = 0;
  /** "addr:port" of peers whose segments are not traced: the trace streams' own connections
   * (tracing the segments that carry the trace would feed itself forever). */
  private readonly quiet = new Set<string>();
  private readonly stop: Array<() => void> = [];
  private readonly addr: Ipv4Addr;
  private readonly addrText: string;
  /** The arrows by from and to, so counting a transition builds no string. */
  private readonly arrowKeys = new Map<string, Map<string, Arrow>>();
  readonly counters = { segments: 0, untracked: 0, unmatched: 0, unparsed: 0, storiesDropped: 0, errors: 0 };

  constructor(
    private readonly stack: Pick<Stack, 'addr' | 'onTransition' | 'packetTap'> & { clock: { now(): number } },
    opts: WatchOptions = {},
  ) {
    this.addr = stack.addr;
    this.addrText = formatIpv4(stack.addr);
    this.limits = { ...DEFAULT_STORY_LIMITS, ...opts.limits };
    this.maxStories = opts.maxStories ?? 20_000;
    this.closedRetentionMs = opts.closedRetentionMs ?? 120_000;
    this.maxClosed = opts.maxClosed ?? 2_000;
    this.orphanMs = opts.orphanMs ?? 10_000;
    this.maxUnattached = opts.maxUnattached ?? 256;
    stack.packetTap = (packet, dir, now) => {
      try {
        this.observe(packet, dir, now);
      } catch {
        // A bug here must not take the stack down: counted, and the packet goes on.
        this.counters.errors++;
      }
    };
    this.stop.push(() => (stack.packetTap = undefined));
    this.stop.push(stack.onTransition((e) => this.onTransition(e, stack.clock.now())));
  }

  detach(): void {
    for (const f of this.stop.splice(0)) f();
  }

  /** Subscribe to transitions (and, when verbose, segments); returns the unsubscribe. */
  onTrace(fn: (e: TraceEvent) => void, verbose: boolean): () => void {
    const wrapped = verbose ? fn : (e: TraceEvent) => e.type === 'transition' && fn(e);
    this.traceFns.add(wrapped);
    if (verbose) this.verboseCount++;
    return () => {
      if (this.traceFns.delete(wrapped) && verbose) this.verboseCount--;
    };
  }

  /** Leave the segments of the connection from `remote` ("addr:port") out of the trace; returns the undo. */
  quietTrace(remote: string): () => void {
    this.quiet.add(remote);
    return () => this.quiet.delete(remote);
  }

  /** One packet at the boundary. Never throws: whatever it cannot read is counted. */
  observe(packet: Uint8Array, dir: 'in' | 'out', now: number): void {
    // IPv4 header fields by offset (RFC 791 §3.1); only unfragmented TCP to or from us.
    if (packet.length < 20 || packet[0]! >> 4 !== 4 || packet[9] !== PROTO_TCP) return;
    const ihl = (packet[0]! & 0x0f) * 4;
    const fragment = ((packet[6]! << 8) | packet[7]!) & 0x3fff; // MF flag + offset
    const totalLength = (packet[2]! << 8) | packet[3]!;
    if (fragment !== 0 || ihl < 20 || totalLength > packet.length || totalLength < ihl) {
      this.counters.unparsed++;
      return;
    }
    const src = ((packet[12]! << 24) | (packet[13]! << 16) | (packet[14]! << 8) | packet[15]!) >>> 0;
    const dst = ((packet[16]! << 24) | (packet[17]! << 16) | (packet[18]! << 8) | packet[19]!) >>> 0;
    if ((dir === 'in' ? dst : src) !== this.addr) return;
    // TCP header fields by offset (RFC 9293 §3.1). The checksum is the stack's business: this
    // shows what was on the wire.
    const t = ihl;
    const tcpLength = totalLength - ihl;
    const dataOffset = tcpLength >= 20 ? (packet[t + 12]! >> 4) * 4 : 0;
    if (dataOffset < 20 || dataOffset > tcpLength) {
      this.counters.unparsed++;
      return;
    }
    const flags = packet[t + 13]!;
    // Options are parsed (by the stack's own parser) only where they are shown: SYNs, SACK
    // blocks (more than the 12 bytes a timestamp takes), the verbose trace.
    let seg: TcpSegment | undefined;
    if (flags & SYN || dataOffset > 32 || this.verboseCount > 0) {
      const parsed = parseTcp(packet.subarray(ihl, totalLength), src, dst, false);
      if ('error' in parsed) {
        this.counters.unparsed++;
        return;
      }
      seg = parsed;
    }
    this.counters.segments++;
    const srcPort = (packet[t]! << 8) | packet[t + 1]!;
    const dstPort = (packet[t + 2]! << 8) | packet[t + 3]!;
    const remote = dir === 'in' ? src : dst;
    const remotePort = dir === 'in' ? srcPort : dstPort;
    const localPort = dir === 'in' ? dstPort : srcPort;
    let story = this.live.get(remote, remotePort, localPort);
    const opening = (flags & (SYN | ACK)) === SYN;
    if (story && opening && dir === 'in' && (story.state === 'TIME-WAIT' || story.state === 'CLOSED') && story.segments.total > 0) {
      // A new SYN for a 4-tuple in TIME-WAIT (RFC 9293 §3.10.7.4, RFC 6191): a new story.
      this.close(story, now);
      story = undefined;
    }
    if (!story) {
      if (!opening) {
        this.counters.unmatched++;
        return;
      }
      if (this.unattached >= this.maxUnattached) {
        this.counters.untracked++;
        return;
      }
      story = this.open(remote, remotePort, localPort, now);
      if (!story) return;
      story.unattached = true;
      this.unattached++;
    }
    const o = seg?.options;
    // Options worth a label: all but timestamps on every segment (they would fill the ladder).
    const opts = o && (o.mss !== undefined || o.sack !== undefined || o.wscale !== undefined || o.sackPermitted) ? formatOptions(o) : undefined;
    const seq = ((packet[t + 4]! << 24) | (packet[t + 5]! << 16) | (packet[t + 6]! << 8) | packet[t + 7]!) >>> 0;
    const ack = ((packet[t + 8]! << 24) | (packet[t + 9]! << 16) | (packet[t + 10]! << 8) | packet[t + 11]!) >>> 0;
    const window = (packet[t + 14]! << 8) | packet[t + 15]!;
    story.addSegment(now, dir, seq, ack, flags, window, tcpLength - dataOffset, opts, o?.wscale);
    story.lastActivity = now;
    if (story.conn) this.maybeSample(story, now);
    else if (flags & RST) this.close(story, now);
    if (seg && this.verboseCount > 0) {
      const peer = `${formatIpv4(remote)}:${remotePort}`;
      if (!this.quiet.has(peer)) {
        this.emit({ type: 'segment', t: now, conn: `${peer} > ${this.addrText}:${localPort}`, dir, segment: formatSegment(seg) });
      }
    }
  }

  private open(remote: number, remotePort: number, localPort: number, now: number): Story | undefined {
    if (this.live.size >= this.maxStories) {
      this.counters.untracked++;
      return undefined;
    }
    const tuple = { remoteAddr: remote, remotePort, localPort };
    const story = new Story(this.nextId++, tuple, `${this.addrText}:${localPort}`, `${formatIpv4(remote)}:${remotePort}`, now, this.limits);
    story.lastActivity = now;
    this.live.set(story);
    this.byId.set(story.id, story);
    return story;
  }

  private close(story: Story, now: number): void {
    if (story.closedAt !== undefined) return;
    story.closedAt = now;
    this.leaveUnattached(story);
    story.version++;
    this.live.delete(story); // only if it is the one filed under its tuple
    this.closedQueue.push(story);
  }

  private onTransition(e: TransitionEvent, now: number): void {
    // A connection born from a listener starts in SYN-RECEIVED (CLOSED -> SYN-RECEIVED) while
    // the listener stays in LISTEN: RFC 9293 Figure 5 draws that as LISTEN -> SYN-RECEIVED, so
    // that arrow counts it. Stories and the trace keep the transition as it happened.
    const from = e.from === 'CLOSED' && e.to === 'SYN-RECEIVED' ? 'LISTEN' : e.from;
    let byTo = this.arrowKeys.get(from);
    if (!byTo) this.arrowKeys.set(from, (byTo = new Map()));
    let arrow = byTo.get(e.to);
    if (arrow === undefined) {
      byTo.set(e.to, (arrow = { name: `${from}>${e.to}`, taken: 0, fired: 0 }));
      this.arrowList.push(arrow);
    }
    arrow.taken++;
    arrow.fired++;
    const conn = e.conn as unknown as WatchedConnection;
    let story = this.byConn.get(conn);
    if (!story) {
      story = this.live.get(conn.remoteAddr, conn.remotePort, conn.localPort);
      if (story && story.conn !== undefined) {
        // The 4-tuple's earlier connection is still around: this is a new one.
        this.close(story, now);
        story = undefined;
      }
      story ??= this.open(conn.remoteAddr, conn.remotePort, conn.localPort, now);
      if (story) {
        story.conn = conn;
        this.byConn.set(conn, story);
        this.leaveUnattached(story);
      }
    }
    if (this.traceFns.size > 0) {
      const name = `${formatIpv4(conn.remoteAddr)}:${conn.remotePort} > ${this.addrText}:${conn.localPort}`;
      this.emit({ type: 'transition', t: now, conn: name, from: e.from, to: e.to, cause: e.cause });
    }
    if (!story) return;
    story.addTransition(now, e.from, e.to, e.cause);
    this.sample(story, now);
    if (e.to === 'CLOSED') {
      this.byConn.delete(conn);
      story.conn = undefined;
      this.close(story, now);
    }
  }

  /** The story is no longer waiting for a connection to claim it (claimed, or closed). */
  private leaveUnattached(story: Story): void {
    if (!story.unattached) return;
    story.unattached = false;
    this.unattached--;
  }

  /** About one sample per RTT (at least 1 ms apart), and one at every transition. */
  private maybeSample(story: Story, now: number): void {
    if (now - story.lastSampleAt >= Math.max(1, story.sampleEvery)) this.sample(story, now);
  }

  private sample(story: Story, now: number): void {
    const conn = story.conn as WatchedConnection | undefined;
    if (!conn) return;
    const info = conn.info(NO_ADDRESS); // only the numbers are read
    story.sampleEvery = info.srtt;
    story.addSample(now, info);
  }

  private emit(e: TraceEvent): void {
    for (const fn of this.traceFns) {
      try {
        fn(e);
      } catch {
        // A subscriber's failure is its own; the stack goes on.
      }
    }
  }

  /** Times each arrow "FROM>TO" was taken since the watcher started. */
  get arrows(): Map<string, number> {
    const m = new Map<string, number>();
    for (const a of this.arrowList) m.set(a.name, a.taken);
    return m;
  }

  /** Arrows taken since the last call, with how often (for the diagram's flashes). */
  drainFired(): Map<string, number> {
    const m = new Map<string, number>();
    for (const a of this.arrowList) {
      if (a.fired === 0) continue;
      m.set(a.name, a.fired);
      a.fired = 0;
    }
    return m;
  }

  story(id: number): Story | undefined {
    return this.byId.get(id);
  }

  /** The live story of the connection listed as remote and local "addr:port". */
  storyByName(remote: string, local: string): Story | undefined {
    const r = splitEndpoint(remote);
    const l = splitEndpoint(local);
    if (!r || !l || l[0] !== this.addr) return undefined;
    return this.live.get(r[0], r[1], l[1]);
  }

  /** Closed stories still kept, newest first. */
  closedStories(): Story[] {
    return this.closedQueue.slice().reverse();
  }

  get storyCount(): number {
    return this.byId.size;
  }

  /**
   * Bytes held by all stories (an estimate: arrays, texts, fixed overhead per object), as of
   * the last prune() (once a second: summing 10,000 stories on every read would cost).
   */
  bytes(): number {
    return this.bytesCache;
  }

  /** Forget closed stories past their time or beyond the bound; close orphans. */
  prune(now: number): void {
    this.pruneStories(now);
    let b = 0;
    for (const s of this.byId.values()) b += s.bytes;
    this.bytesCache = b;
  }

  private pruneStories(now: number): void {
    // Collected first (closing one moves others in the table), then closed oldest first.
    const orphans: Story[] = [];
    for (const s of this.live.values()) if (s.conn === undefined && now - s.lastActivity > this.orphanMs) orphans.push(s);
    if (orphans.length > 1) orphans.sort((a, b) => a.id - b.id);
    for (const s of orphans) this.close(s, now);
    let drop = 0;
    const q = this.closedQueue;
    while (drop < q.length && (q.length - drop > this.maxClosed || now - q[drop]!.closedAt! > this.closedRetentionMs)) drop++;
    if (drop === 0) return;
    for (const s of q.slice(0, drop)) this.byId.delete(s.id);
    this.counters.storiesDropped += drop;
    this.closedQueue = q.slice(drop);
  }

  stats(): Record<string, number> {
    return {
      'web.watch.segments': this.counters.segments,
      'web.watch.unmatched': this.counters.unmatched,
      'web.watch.unparsed': this.counters.unparsed,
      'web.watch.untracked': this.counters.untracked,
      'web.watch.stories': this.byId.size,
      'web.watch.storiesDropped': this.counters.storiesDropped,
      'web.watch.errors': this.counters.errors,
    };
  }
}
