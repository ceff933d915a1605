/**
 * The runtime: the one place (with src/link) that touches the outside world. It owns the
 * clock, one timer for the earliest deadline of everything the stack holds, and the link.
 * Protocol code below it takes `now` and returns output; the runtime flushes that output
 * to the link once per batch of received packets, per timer expiry, or per burst of user calls.
 */
import type { Ipv4Addr } from './ip/addr.js';
import { formatIpv4 } from './ip/addr.js';
import { PROTO_TCP, PROTO_UDP } from './ip/ipv4.js';
import { IpLayer } from './ip/layer.js';
import type { ArpConfig, NeighbourInfo } from './link/arp.js';
import type { Mac } from './link/ethernet.js';
import { EthernetLayer } from './link/ethernet-layer.js';
import type { Link, PacketMeta } from './link/link.js';
import { checkRx, completeChecksum } from './link/virtio.js';
import type { Clock, ClockTimer } from './runtime/clock.js';
import { RealClock } from './runtime/clock.js';
import type { Logger } from './runtime/log.js';
import { createHash } from 'node:crypto';
import type { TcpConfig } from './tcp/config.js';
import type { ConnectionInfo } from './tcp/connection.js';
import type { TcpLimits } from './tcp/limits.js';
import type { TransitionEvent } from './tcp/layer.js';
import { TcpLayer, formatTransition } from './tcp/layer.js';
import type { ConnectOptions, ServerOptions, SocketRuntime } from './tcp/socket.js';
import { TcpServer, TcpSocket, connectSocket } from './tcp/socket.js';
import { UdpLayer } from './udp/layer.js';

export interface StackOptions {
  link: Link;
  /** The address this stack answers for. */
  addr: Ipv4Addr;
  /**
   * The on-link subnet's prefix length and the gateway beyond it (see IpLayer.nextHop).
   * Packets from the subnet's network or broadcast address are dropped
   * (`ip.drop.src-network`, `ip.drop.src-broadcast`); unchecked when the prefix is absent.
   */
  prefix?: number;
  gateway?: Ipv4Addr;
  /**
   * TAP mode: the link moves Ethernet frames, and this is our MAC address (plus ARP's
   * timers, Linux's defaults otherwise). Needs `prefix`: ARP resolves on-link hosts only.
   */
  ethernet?: { mac: Mac; arp?: Partial<ArpConfig> };
  clock?: Clock;
  logger?: Logger;
  tcp?: Partial<TcpConfig>;
  /** TCP's caps and rate limits (src/tcp/limits.ts: connections, TIME-WAIT, orphans, SYN cookies, replies). */
  limits?: Partial<TcpLimits>;
  /** RFC 6528 ISN key (random when absent; fixed in reproducible simulations, which then derive
   *  the SYN-cookie keys from it too). */
  isnSecret?: Uint8Array;
  /** Randomness for port choice (seeded in simulations). */
  random?: () => number;
  /** Print every TCP state transition to stderr (also turned on by NETSTACK_TRACE=1). */
  trace?: boolean;
  /** A name for trace lines when several stacks share a process. */
  name?: string;
  /**
   * Use the link's offloads when it has them (default true): TCP sends super-segments of up to
   * 64 KiB with partial checksums and the link cuts them into MSS-sized segments (src/link/virtio.ts).
   * False keeps one MSS per packet and checksums computed here. TUN only (not in TAP mode).
   */
  offload?: boolean;
}

/** A protocol module with deadlines of its own (IP reassembly, TCP; ARP, DNS, the proxy). */
export interface TimedModule {
  /** Do what is due at `now`. */
  poll(now: number): void;
  /** The earliest time `poll` has work to do; Infinity when none. */
  nextDeadline(): number;
}

export class Stack implements SocketRuntime {
  readonly clock: Clock;
  readonly addr: Ipv4Addr;
  readonly ip: IpLayer;
  readonly tcp: TcpLayer;
  readonly udp: UdpLayer;
  readonly link: Link;
  /** The data-link layer in TAP mode (Ethernet + ARP); undefined on a TUN link. */
  readonly ethernet: EthernetLayer | undefined;
  readonly name: string;
  private outbox: Uint8Array[] = [];
  /** Offload headers of outbox's packets (same indices), once any has one. */
  private outMeta: Array<PacketMeta | undefined> | undefined;
  /** TCP hands the link super-segments and partial checksums (StackOptions.offload and link.offload). */
  get offload(): boolean {
    return this.tcp.offload;
  }
  private readonly offloadCounters = { gsoIn: 0, trustedIn: 0, completedIn: 0 } as Record<string, number>;
  private readonly tcpSendOpts: { meta?: PacketMeta } = {};
  private readonly timer: ClockTimer;
  private kickScheduled = false;
  /** Inside receive() or onTimer(): a flush follows anyway, so kick() need not schedule one. */
  private busy = false;
  /** What the timer is armed for (see finish). */
  private armedAt = Infinity;
  private closed = false;
  private readonly counters = { batches: 0, packetsIn: 0, packetsOut: 0, memoryGivenBack: 0 };
  /** Every module the one timer serves, polled in this order. */
  private readonly timed: TimedModule[] = [];
  /**
   * Sees every IPv4 packet: each received one just before it is processed, sent ones as they
   * leave (the live view's watcher, src/web/watch.ts). Unset by default: one check per packet.
   */
  packetTap: ((packet: Uint8Array, dir: 'in' | 'out', now: number) => void) | undefined;

  constructor(opts: StackOptions) {
    this.clock = opts.clock ?? new RealClock();
    this.addr = opts.addr;
    this.link = opts.link;
    this.name = opts.name ?? formatIpv4(opts.addr);
    const log = opts.logger;
    const offload = (opts.offload ?? true) && opts.link.offload === true && !opts.ethernet;
    const eth = opts.ethernet
      ? new EthernetLayer({
          mac: opts.ethernet.mac,
          addr: opts.addr,
          prefix: opts.prefix ?? 32,
          deliver: (packet, now) => {
            this.packetTap?.(packet, 'in', now);
            this.ip.receive(packet, now);
          },
          output: (frame) => this.outbox.push(frame),
          unreachable: (packet, now) => this.ip.localUnreachable(packet, now),
          arp: opts.ethernet.arp,
          random: opts.random,
          log,
        })
      : undefined;
    this.ethernet = eth;
    this.ip = new IpLayer({
      addr: opts.addr,
      mtu: opts.link.mtu,
      prefix: opts.prefix,
      gateway: opts.gateway,
      // The packet tap sees IPv4 packets in both modes: here before framing in TAP mode,
      // at flush time (finish) in TUN mode.
      transmit: eth
        ? (p, hop, now) => {
            this.packetTap?.(p, 'out', now);
            eth.send(p, hop, now);
          }
        : (p, _hop, _now, meta) => {
            if (meta !== undefined) (this.outMeta ??= [])[this.outbox.length] = meta;
            this.outbox.push(p);
          },
      log,
    });
    this.tcp = new TcpLayer({
      addr: opts.addr,
      mtu: opts.link.mtu,
      send: (packet, dst, now, meta) => {
        if (meta === undefined) return this.ip.send(packet, dst, PROTO_TCP, now);
        // One options object for every offloaded segment (ip.send reads it at once).
        this.tcpSendOpts.meta = meta;
        this.ip.send(packet, dst, PROTO_TCP, now, this.tcpSendOpts);
      },
      offload,
      log,
      config: opts.tcp,
      limits: opts.limits,
      isnSecret: opts.isnSecret,
      cookieSecret: opts.isnSecret && createHash('sha256').update(opts.isnSecret).update('syncookie').digest(),
      random: opts.random,
    });
    this.udp = new UdpLayer(this.ip, { log, runtime: this });
    this.ip.register(PROTO_TCP, this.tcp);
    this.ip.register(PROTO_UDP, this.udp);
    this.timer = this.clock.timer(() => this.onTimer());
    // Bottom-up: ARP (TAP mode) first, so a failed resolution is reported before TCP retransmits;
    // its first deadline is now (the gratuitous announcement).
    if (eth) this.addTimed(eth);
    this.addTimed(this.ip);
    this.addTimed(this.tcp);
    this.link.onReceive((batch, meta) => this.receive(batch, meta));
    if (opts.trace ?? process.env['NETSTACK_TRACE'] === '1') {
      const prefix = opts.name ? `[${opts.name}] ` : '';
      this.tcp.onTransitionEvent((e) => process.stderr.write(`${prefix}${formatTransition(e)}\n`));
    }
  }

  /** A batch of packets from the link (with their offload headers, if any): process all, then flush output once. */
  receive(batch: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>): void {
    if (this.closed) return;
    const now = this.clock.now();
    this.counters.batches++;
    this.counters.packetsIn += batch.length;
    const tap = this.packetTap;
    const eth = this.ethernet;
    this.busy = true;
    try {
      for (let i = 0; i < batch.length; i++) {
        if (eth) {
          eth.receive(batch[i]!, now); // IPv4 inside reaches the tap through `deliver`
        } else {
          const m = meta?.[i];
          const trusted = m !== undefined && this.offloadIn(batch[i]!, m);
          if (trusted === undefined) continue;
          if (tap) tap(batch[i]!, 'in', now);
          this.ip.receive(batch[i]!, now, trusted);
        }
      }
    } finally {
      this.busy = false;
    }
    this.tcp.flush(now);
    this.finish();
  }

  /**
   * Turn offload on or off while running (on only if the link has it): from the next segment on,
   * TCP sends MSS-sized segments with full checksums (off) or super-segments (on). Received
   * packets' headers are honoured either way. Returns whether offload is on.
   */
  setOffload(on: boolean): boolean {
    this.tcp.offload = on && this.link.offload === true && !this.ethernet;
    return this.tcp.offload;
  }

  /**
   * A received packet's offload header (virtio.ts checkRx): whether the transport checksum is
   * vouched for, or undefined when the header does not fit the packet (dropped and counted).
   */
  private offloadIn(packet: Uint8Array, m: PacketMeta): boolean | undefined {
    const verdict = checkRx(m, packet);
    if (m.gsoType !== 0) this.offloadCounters['gsoIn']!++;
    switch (verdict) {
      case 'plain':
        return false;
      case 'trusted':
        this.offloadCounters['trustedIn']!++;
        return true;
      case 'complete':
        this.offloadCounters['completedIn']!++;
        completeChecksum(packet, m.csumStart, m.csumOffset);
        return false;
      default: {
        const key = `link.offload.drop.${verdict.drop}`;
        this.offloadCounters[key] = (this.offloadCounters[key] ?? 0) + 1;
        return undefined;
      }
    }
  }

  private onTimer(): void {
    this.armedAt = Infinity; // it fired
    if (this.closed) return;
    const now = this.clock.now();
    this.busy = true;
    try {
      for (const m of this.timed) m.poll(now);
    } finally {
      this.busy = false;
    }
    this.tcp.flush(now);
    this.finish();
  }

  /** Flush soon: called after user actions (write, end, read that opens the window). */
  kick(): void {
    // During a batch or a timer run, the flush at its end sends what the user queued.
    if (this.kickScheduled || this.closed || this.busy) return;
    this.kickScheduled = true;
    this.clock.defer(() => {
      this.kickScheduled = false;
      if (this.closed) return;
      this.tcp.flush(this.clock.now());
      this.finish();
    });
  }

  /** Hand queued packets to the link and arm the timer for the earliest deadline. */
  private finish(): void {
    if (this.tcp.memory.shouldGiveBack() && this.link.releaseFreedMemory) {
      this.counters.memoryGivenBack++;
      this.link.releaseFreedMemory();
    }
    if (this.outbox.length > 0) {
      const out = this.outbox;
      const meta = this.outMeta;
      this.outbox = [];
      this.outMeta = undefined;
      this.counters.packetsOut += out.length;
      const tap = this.packetTap;
      if (tap && !this.ethernet) for (let i = 0, now = this.clock.now(); i < out.length; i++) tap(out[i]!, 'out', now);
      if (meta !== undefined) meta.length = out.length;
      this.link.send(out, meta);
    }
    let at = Infinity;
    for (const m of this.timed) at = Math.min(at, m.nextDeadline());
    // Re-arm only when the earliest deadline moved earlier. Most batches move it later (a new
    // RTO, a delayed ACK), and re-arming a timer each time costs more than an early wake-up:
    // onTimer polls (nothing is due yet) and arms the timer for the real deadline.
    if (at < this.armedAt) {
      this.armedAt = at;
      this.timer.set(at);
    }
  }

  /** Serve `m`'s deadlines with the stack's timer (a module added later is polled after the others). */
  addTimed(m: TimedModule): void {
    this.timed.push(m);
    if (!this.closed) this.finish();
  }

  /** Stop serving `m` (a resolver that was closed). */
  removeTimed(m: TimedModule): void {
    const i = this.timed.indexOf(m);
    if (i >= 0) this.timed.splice(i, 1);
  }

  // --- Sockets (Node conventions) ---

  createServer(opts?: ServerOptions | ((socket: TcpSocket) => void), onConnection?: (socket: TcpSocket) => void): TcpServer {
    if (typeof opts === 'function') return new TcpServer(this, {}, opts);
    return new TcpServer(this, opts ?? {}, onConnection);
  }

  connect(opts: ConnectOptions, onConnect?: () => void): TcpSocket {
    return connectSocket(this, opts, onConnect);
  }

  // --- Introspection ---

  /**
   * Connections with their state, sequence variables, windows, srtt, rto and retransmissions:
   * live ones first, at most `limit`, after skipping `offset`.
   */
  connections(limit?: number, offset?: number): ConnectionInfo[] {
    return this.tcp.connections(limit, offset);
  }

  /** Connections per TCP state, e.g. { ESTABLISHED: 3, 'TIME-WAIT': 1200 }. */
  connectionStates(): Record<string, number> {
    return this.tcp.connectionStates();
  }

  /** The ARP neighbour cache (TAP mode; empty on TUN). */
  neighbours(): NeighbourInfo[] {
    return this.ethernet?.neighbours(this.clock.now()) ?? [];
  }

  onTransition(fn: (e: TransitionEvent) => void): () => void {
    return this.tcp.onTransitionEvent(fn);
  }

  /** Flat counters: packets in/out, drops by reason, per-protocol events. */
  stats(): Record<string, number> {
    return {
      'stack.batches': this.counters.batches,
      'stack.packets.in': this.counters.packetsIn,
      'stack.packets.out': this.counters.packetsOut,
      /** Times TCP's buffers fell far below their high point and the link was asked to give the memory back. */
      'stack.memory.give-back': this.counters.memoryGivenBack,
      'link.offload': this.offload ? 1 : 0,
      'link.offload.gso.in': this.offloadCounters['gsoIn']!,
      'link.offload.csum.trusted': this.offloadCounters['trustedIn']!,
      'link.offload.csum.completed': this.offloadCounters['completedIn']!,
      ...Object.fromEntries(Object.entries(this.offloadCounters).filter(([k]) => k.startsWith('link.'))),
      ...this.ethernet?.stats(),
      ...this.ip.stats(),
      ...this.udp.stats(),
      ...this.tcp.stats(),
    };
  }

  /** Stop: cancel the timer and close the link. Connections are dropped without RSTs. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer.clear();
    this.link.close();
  }
}
