/**
 * The numbered timeline of `netstack get`: what each layer did, in order, with the time
 * since the journey began. TCP lines come from watching the packets on the link (so they
 * show exactly what went over the wire) joined with the connection's state transitions;
 * DNS and HTTP lines come from the resolver and the HTTP client.
 */
import type { Link } from '../link/link.js';
import { formatIpv4 } from '../ip/addr.js';
import { PROTO_TCP, parseIpv4 as parseIpv4Packet } from '../ip/ipv4.js';
import { ACK, FIN, RST, SYN, parseTcp } from '../tcp/segment.js';
import type { TransitionEvent } from '../tcp/layer.js';

export type Layer = 'DNS' | 'TCP' | 'HTTP';

export interface TimelineEvent {
  n: number;
  /** Milliseconds since the journey began. */
  t: number;
  layer: Layer;
  what: string;
  /** State transitions this segment caused or carried, e.g. ["SYN-SENT → ESTABLISHED"]. */
  transitions: string[];
  /** Machine-readable details for --json. */
  detail: Record<string, unknown>;
}

export class Timeline {
  readonly events: TimelineEvent[] = [];
  /** Time of the first event: the journey's t = 0. */
  private start: number | undefined;
  /** Local port of the connection whose segments we show (the HTTP one). */
  private port: number | undefined;
  /** Transitions waiting for the next segment we send (a close() is followed by its FIN). */
  private pendingOut: string[] = [];
  /** The incoming segment being processed right now: transitions during it belong to it (n = 0 until it is listed). */
  private current: TimelineEvent | undefined;
  /** We received a SYN or FIN: the segment we send next acknowledges it, show it. */
  private showNextOut = false;
  /** Data segments that arrived on the connection, and their bytes. */
  dataSegmentsIn = 0;
  private readonly listeners: Array<(e: TimelineEvent) => void> = [];
  private readonly finished = new Set<number>();
  private announced = 0;

  constructor(private readonly now: () => number) {}

  private elapsed(): number {
    const t = this.now();
    this.start ??= t;
    return t - this.start;
  }

  onEvent(fn: (e: TimelineEvent) => void): void {
    this.listeners.push(fn);
  }

  add(layer: Layer, what: string, detail: Record<string, unknown> = {}): TimelineEvent {
    const e: TimelineEvent = { n: this.events.length + 1, t: this.elapsed(), layer, what, transitions: [], detail };
    this.events.push(e);
    this.announce(e);
    return e;
  }

  /** Show the segments of the connection on local `port` from now on. */
  follow(port: number): void {
    this.port = port;
  }

  /** A state transition of some connection. */
  onTransition(e: TransitionEvent): void {
    if (e.conn.localPort !== this.port) return;
    const text = `${e.from} → ${e.to}`;
    if (!this.current) {
      this.pendingOut.push(text);
      return;
    }
    // An incoming segment that changed the state is worth a line even if it is a plain ACK.
    if (this.current.n === 0) this.current.n = this.events.push(this.current);
    this.current.transitions.push(text);
  }

  /** Wrap `link` so every packet in and out passes by the timeline. Incoming packets are handed up one at a time. */
  tap(link: Link): Link {
    return {
      mtu: link.mtu,
      onReceive: (handler) =>
        link.onReceive((batch) => {
          for (const p of batch) {
            this.current = this.segment(p, 'in');
            try {
              handler([p]);
            } finally {
              // Its transitions are known now: the line is complete.
              if (this.current && this.current.n > 0) this.announce(this.current);
              this.current = undefined;
            }
          }
        }),
      send: (packets) => {
        for (const p of packets) this.segment(p, 'out');
        link.send(packets);
      },
      close: () => link.close(),
    };
  }

  /**
   * A TCP segment of our connection. Outgoing, it becomes a line when it carries SYN, FIN
   * or RST, acknowledges the peer's SYN or FIN, or follows a transition (a close() and its
   * FIN). Incoming, when it carries SYN, FIN or RST, or causes a transition (decided while
   * the stack processes it: see onTransition). Data segments are counted, not listed.
   */
  private segment(packet: Uint8Array, dir: 'in' | 'out'): TimelineEvent | undefined {
    if (this.port === undefined) return undefined;
    const ip = parseIpv4Packet(packet);
    if ('error' in ip || ip.header.protocol !== PROTO_TCP || ip.header.fragmentOffset !== 0) return undefined;
    const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, false);
    if ('error' in seg) return undefined;
    if ((dir === 'out' ? seg.srcPort : seg.dstPort) !== this.port) return undefined;
    const len = seg.payload.length;
    if (dir === 'in' && len > 0) this.dataSegmentsIn++;
    const control = (seg.flags & (SYN | FIN | RST)) !== 0;
    const name = flagName(seg.flags);
    const parts = [`${dir === 'out' ? '→' : '←'} ${name.padEnd(8)}`];
    if (control || len > 0) parts.push(`seq=${seg.seq}`);
    if (seg.flags & ACK) parts.push(`ack=${seg.ack}`);
    if (len > 0) parts.push(`len=${len}`);
    const e: TimelineEvent = {
      n: 0,
      t: this.elapsed(),
      layer: 'TCP',
      what: parts.join(' '),
      transitions: [],
      detail: { dir, flags: name, seq: seg.seq, ack: seg.flags & ACK ? seg.ack : undefined, len, src: `${formatIpv4(ip.header.src)}:${seg.srcPort}`, dst: `${formatIpv4(ip.header.dst)}:${seg.dstPort}` },
    };
    if (dir === 'in') {
      if (seg.flags & (SYN | FIN)) this.showNextOut = true;
      if (control) e.n = this.events.push(e);
      return e;
    }
    const show = control || this.showNextOut || this.pendingOut.length > 0;
    this.showNextOut = false;
    if (!show) return undefined;
    e.transitions = this.pendingOut;
    this.pendingOut = [];
    e.n = this.events.push(e);
    this.announce(e);
    return e;
  }

  /**
   * Hand finished lines to the listeners in number order. An incoming segment's line is
   * finished only after the stack processed it, by which time the ACK it provoked may be
   * numbered after it and already finished: that one waits its turn.
   */
  private announce(e: TimelineEvent): void {
    this.finished.add(e.n);
    while (this.finished.has(this.announced + 1)) {
      this.finished.delete(++this.announced);
      for (const fn of this.listeners) fn(this.events[this.announced - 1]!);
    }
  }
}

function flagName(flags: number): string {
  const names: string[] = [];
  if (flags & SYN) names.push('SYN');
  if (flags & FIN) names.push('FIN');
  if (flags & RST) names.push('RST');
  if (flags & ACK) names.push('ACK');
  if (names.length === 0) return 'NONE';
  return names.join('-');
}

/** The human table: "#  time  layer  what  [transitions]". */
export function formatEvent(e: TimelineEvent): string {
  const n = String(e.n).padStart(3);
  const t = `${e.t.toFixed(2)} ms`.padStart(11);
  const what = e.transitions.length > 0 ? `${e.what.padEnd(48)} ${e.transitions.join(', ')}` : e.what;
  return `${n}  ${t}   ${e.layer.padEnd(5)}  ${what}`;
}

export const TIMELINE_HEADER = `  #         time   layer  what`;

/** One JSON line per event for --json. */
export function jsonEvent(e: TimelineEvent): string {
  return JSON.stringify({ n: e.n, t_ms: Math.round(e.t * 1000) / 1000, layer: e.layer, what: e.what, transitions: e.transitions, ...e.detail });
}
