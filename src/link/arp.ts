/**
 * ARP for IPv4 over Ethernet (RFC 826) with a neighbour cache whose states follow Linux's
 * (net/core/neighbour.c, itself RFC 4861 section 7.3's Neighbor Unreachability Detection):
 *
 *   (none) ──send──▶ INCOMPLETE ──reply──▶ REACHABLE ──reachable time──▶ STALE ──gc_stale_time unused──▶ (gone)
 *                     │ 3 broadcast requests,              ▲                 │ used to send
 *                     │ 1 s apart, no answer               │ reply           ▼
 *                     ▼                                    └──────── DELAY ──5 s──▶ PROBE ──3 unicast
 *                   (gone: queued packets get ICMP host unreachable)                 requests unanswered──▶ (gone)
 *
 * The packet (28 bytes for Ethernet/IPv4):
 *
 *    hardware type (1 = Ethernet) 2 │ protocol type (0x0800) 2 │ hlen (6) 1 │ plen (4) 1
 *    opcode (1 request, 2 reply)  2 │ sender MAC 6 │ sender IPv4 4 │ target MAC 6 │ target IPv4 4
 *
 * Sans-I/O: every entry point takes `now` (ms); frames leave through the `output` callback,
 * and packets that could not be resolved through `unreachable`.
 */
import type { Logger } from 'pino';
import { formatIpv4, inSubnet, readIpv4, writeIpv4 } from '../ip/addr.js';
import type { Ipv4Addr } from '../ip/addr.js';
import { Counters } from '../ip/stats.js';
import {
  BROADCAST_MAC,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ZERO_MAC,
  buildEthernet,
  formatMac,
  isGroupMac,
  isZeroMac,
  macEquals,
} from './ethernet.js';
import type { Mac } from './ethernet.js';

export const ARP_LEN = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const HTYPE_ETHERNET = 1;

export interface ArpPacket {
  op: number;
  senderMac: Mac;
  senderIp: Ipv4Addr;
  targetMac: Mac;
  targetIp: Ipv4Addr;
}

export type ArpDropReason = 'short' | 'hardware' | 'protocol' | 'opcode';

/**
 * Decode an ARP packet (the Ethernet payload, padding allowed after it). Only Ethernet
 * hardware addresses and IPv4 protocol addresses are ours to handle (RFC 826: "?Do I have
 * the hardware type in ar$hrd?" ... "?Do I speak the protocol in ar$pro?").
 */
export function parseArp(buf: Uint8Array): ArpPacket | { error: ArpDropReason } {
  if (buf.length < 8) return { error: 'short' };
  const htype = (buf[0]! << 8) | buf[1]!;
  const ptype = (buf[2]! << 8) | buf[3]!;
  const hlen = buf[4]!;
  const plen = buf[5]!;
  if (htype !== HTYPE_ETHERNET || hlen !== 6) return { error: 'hardware' };
  if (ptype !== ETHERTYPE_IPV4 || plen !== 4) return { error: 'protocol' };
  if (buf.length < ARP_LEN) return { error: 'short' };
  const op = (buf[6]! << 8) | buf[7]!;
  if (op !== ARP_REQUEST && op !== ARP_REPLY) return { error: 'opcode' };
  return {
    op,
    senderMac: buf.subarray(8, 14),
    senderIp: readIpv4(buf, 14),
    targetMac: buf.subarray(18, 24),
    targetIp: readIpv4(buf, 24),
  };
}

export function writeArp(p: ArpPacket): Uint8Array {
  const b = new Uint8Array(ARP_LEN);
  b[1] = HTYPE_ETHERNET;
  b[2] = ETHERTYPE_IPV4 >>> 8;
  b[3] = ETHERTYPE_IPV4 & 0xff;
  b[4] = 6;
  b[5] = 4;
  b[7] = p.op;
  b.set(p.senderMac, 8);
  writeIpv4(b, 14, p.senderIp);
  b.set(p.targetMac, 18);
  writeIpv4(b, 24, p.targetIp);
  return b;
}

export type NeighbourState = 'INCOMPLETE' | 'REACHABLE' | 'STALE' | 'DELAY' | 'PROBE';

/** Timers and limits, named and defaulted as Linux's `ip ntable show` parameters. */
export interface ArpConfig {
  /** retrans_time: between two requests for the same address. */
  retransMs: number;
  /** mcast_solicit: broadcast requests while INCOMPLETE before giving up. */
  mcastSolicit: number;
  /** ucast_solicit: unicast requests in PROBE before giving up. */
  ucastSolicit: number;
  /** base_reachable_time: REACHABLE lasts a random 0.5..1.5 times this (RFC 4861 section 6.3.2). */
  baseReachableMs: number;
  /** delay_first_probe_time: a STALE entry used to send waits this long (DELAY) for a reply before probing. */
  delayFirstProbeMs: number;
  /** gc_stale_time: a STALE entry unused this long is removed. */
  gcStaleMs: number;
  /** gc_thresh3: the most entries the cache holds; ARP packets cannot create more. */
  maxEntries: number;
  /** unres_qlen_bytes: packets (bytes) queued per INCOMPLETE neighbour; the oldest go first. */
  queueBytes: number;
  /** RFC 5227 section 1.1 ANNOUNCE_NUM and ANNOUNCE_INTERVAL: gratuitous ARPs at start. */
  announceCount: number;
  announceIntervalMs: number;
}

export const ARP_DEFAULTS: ArpConfig = {
  retransMs: 1000,
  mcastSolicit: 3,
  ucastSolicit: 3,
  baseReachableMs: 30_000,
  delayFirstProbeMs: 5000,
  gcStaleMs: 60_000,
  maxEntries: 1024,
  queueBytes: 212_992,
  announceCount: 2,
  announceIntervalMs: 2000,
};

interface Neighbour {
  readonly ip: Ipv4Addr;
  mac: Mac | undefined;
  /** NONE only between create() and the first setState(). */
  state: NeighbourState | 'NONE';
  /** When the current state's timer fires (Infinity: none). */
  deadline: number;
  /** Requests sent in INCOMPLETE or PROBE. */
  probes: number;
  /** Packets waiting for the address (INCOMPLETE only). */
  queue: Uint8Array[];
  queuedBytes: number;
  /** Last time the entry was used to send (STALE's garbage collection counts from here). */
  usedAt: number;
  /** Last time its address was confirmed (a reply to us). */
  confirmedAt: number;
}

/** What the status page and /metrics show of one entry. */
export interface NeighbourInfo {
  ip: string;
  mac: string;
  state: NeighbourState;
  /** Packets waiting for resolution. */
  queued: number;
  /** Requests sent in the current resolution or probe. */
  probes: number;
  /** Milliseconds since the address was last confirmed (-1: never). */
  confirmedAgoMs: number;
}

export interface ArpOptions {
  mac: Mac;
  addr: Ipv4Addr;
  /** The on-link subnet: only neighbours inside it are cached. */
  prefix: number;
  /** A whole Ethernet frame to transmit. */
  output: (frame: Uint8Array) => void;
  /** A queued IPv4 packet whose next hop could not be resolved. */
  unreachable: (packet: Uint8Array, now: number) => void;
  config?: Partial<ArpConfig>;
  /** Uniform in [0, 1): spreads reachable times (seeded in simulations). */
  random?: () => number;
  log?: Logger | undefined;
}

export class Arp {
  readonly mac: Mac;
  readonly addr: Ipv4Addr;
  private readonly prefix: number;
  private readonly cfg: ArpConfig;
  private readonly output: (frame: Uint8Array) => void;
  private readonly unreachable: (packet: Uint8Array, now: number) => void;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly cache = new Map<Ipv4Addr, Neighbour>();
  readonly counters = new Counters([
    'arp.in',
    'arp.request.in',
    'arp.reply.in',
    'arp.request.out',
    'arp.reply.out',
    'arp.announce.out',
    'arp.resolved',
    'arp.failed',
  ]);
  private announced = 0;
  private announceAt = 0;
  /** Cached earliest deadline; recomputed only after an entry's timer changed. */
  private earliest = 0;
  private dirty = true;

  constructor(opts: ArpOptions) {
    this.mac = opts.mac;
    this.addr = opts.addr >>> 0;
    this.prefix = opts.prefix;
    this.cfg = { ...ARP_DEFAULTS, ...opts.config };
    this.output = opts.output;
    this.unreachable = opts.unreachable;
    this.random = opts.random ?? Math.random;
    this.log = opts.log;
  }

  // ───────────── sending IPv4 ─────────────

  /**
   * The MAC address to send `packet` to `nextHop` with, or undefined when it is not known
   * yet: then the packet is queued (bounded) and resolution runs.
   */
  resolve(nextHop: Ipv4Addr, packet: Uint8Array, now: number): Mac | undefined {
    let n = this.cache.get(nextHop);
    if (n === undefined) {
      if (!inSubnet(nextHop, this.addr, this.prefix) || nextHop === this.addr) {
        this.counters.inc('arp.drop.off-link');
        return undefined;
      }
      n = this.create(nextHop, now, true);
      if (n === undefined) {
        this.counters.inc('arp.drop.cache-full');
        return undefined;
      }
      this.enqueue(n, packet);
      this.sendRequest(n, BROADCAST_MAC);
      n.probes = 1;
      this.setState(n, 'INCOMPLETE', now + this.cfg.retransMs, 'needed to send');
      return undefined;
    }
    n.usedAt = now;
    switch (n.state) {
      case 'INCOMPLETE':
        this.enqueue(n, packet);
        return undefined;
      case 'STALE':
        // RFC 4861 section 7.3.3: sending to a STALE neighbour starts the DELAY timer; the
        // packet goes out to the cached address meanwhile.
        this.setState(n, 'DELAY', now + this.cfg.delayFirstProbeMs, 'used while stale');
        return n.mac;
      default:
        return n.mac;
    }
  }

  private enqueue(n: Neighbour, packet: Uint8Array): void {
    n.queue.push(packet);
    n.queuedBytes += packet.length;
    // Linux drops the oldest queued packet when unres_qlen_bytes is exceeded (__neigh_event_send).
    while (n.queuedBytes > this.cfg.queueBytes && n.queue.length > 1) {
      n.queuedBytes -= n.queue.shift()!.length;
      this.counters.inc('arp.queue.dropped');
    }
  }

  /** New entry; undefined when the cache is full and nothing can be evicted. */
  private create(ip: Ipv4Addr, now: number, forOurOwnTraffic: boolean): Neighbour | undefined {
    if (this.cache.size >= this.cfg.maxEntries) {
      // A flood of ARP from random senders must not grow the cache, nor push out entries
      // we use: packets from the wire never evict; our own traffic may evict the oldest
      // STALE entry (Map order is insertion order).
      if (!forOurOwnTraffic) return undefined;
      let victim: Neighbour | undefined;
      for (const e of this.cache.values()) {
        if (e.state === 'STALE') {
          victim = e;
          break;
        }
      }
      if (!victim) return undefined;
      this.remove(victim, 'evicted: cache full');
    }
    const n: Neighbour = {
      ip,
      mac: undefined,
      state: 'NONE',
      deadline: Infinity,
      probes: 0,
      queue: [],
      queuedBytes: 0,
      usedAt: now,
      confirmedAt: -1,
    };
    this.cache.set(ip, n);
    return n;
  }

  // ───────────── receiving ARP ─────────────

  /** An ARP packet (the payload of a frame with EtherType 0x0806 that was for us). */
  receive(payload: Uint8Array, frameSrc: Mac, now: number): void {
    this.counters.inc('arp.in');
    const p = parseArp(payload);
    if ('error' in p) return this.drop(p.error);
    this.counters.inc(p.op === ARP_REQUEST ? 'arp.request.in' : 'arp.reply.in');
    if (isGroupMac(p.senderMac) || isZeroMac(p.senderMac)) return this.drop('bad-sender-mac');
    if (!macEquals(p.senderMac, frameSrc)) {
      // Proxy ARP and some bridges legitimately differ; a host normally does not. Linux accepts
      // it; so do we, but it is worth a counter.
      this.counters.inc('arp.sender-mac-mismatch');
    }
    if (p.senderIp === this.addr) {
      // RFC 5227 section 2.4: another host claims our address. We keep using it (a host with
      // no other address has nowhere to go) but say so loudly: the 1st, 2nd, 4th, 8th...
      // time, so a flood of such packets cannot flood the log too.
      this.counters.inc('arp.conflict');
      const seen = this.counters.get('arp.conflict');
      if ((seen & (seen - 1)) === 0) {
        this.log?.warn({ ip: formatIpv4(this.addr), mac: formatMac(p.senderMac), seen }, 'arp: another host uses our address');
      }
      return;
    }
    const forUs = p.targetIp === this.addr;
    if (p.senderIp === 0) {
      // RFC 5227 section 2.1.1 ARP probe (sender 0.0.0.0): someone checks whether an address
      // is free. Answer if it is ours, as Linux does; learn nothing.
      if (forUs && p.op === ARP_REQUEST) this.sendReply(p.senderMac, 0);
      else this.counters.inc('arp.probe.ignored');
      return;
    }

    // RFC 826: "If the pair <protocol type, sender protocol address> is already in my
    // translation table, update the sender hardware address field of the entry with the new
    // information in the packet and set Merge_flag to true."
    const n = this.cache.get(p.senderIp);
    if (n) {
      this.update(n, p, now);
    } else if (forUs && p.op === ARP_REQUEST && inSubnet(p.senderIp, this.addr, this.prefix)) {
      // "?Am I the target protocol address? Yes: If Merge_flag is false, add the triplet."
      // Linux does so for requests only, creating the entry STALE (neigh_event_ns): we will
      // likely answer the sender, and the first packet to it starts verification.
      const fresh = this.create(p.senderIp, now, false);
      if (fresh) {
        fresh.mac = Uint8Array.from(p.senderMac);
        this.setState(fresh, 'STALE', now + this.cfg.gcStaleMs, 'learned from request');
      } else {
        this.counters.inc('arp.cache.full');
      }
    } else if (p.op === ARP_REPLY) {
      // A reply nobody asked for (Linux's arp_accept=0): it creates no entry.
      this.counters.inc('arp.reply.unsolicited');
    }

    if (!forUs) {
      this.counters.inc('arp.not-for-us');
      return;
    }
    if (p.op === ARP_REQUEST) {
      if (this.log?.isLevelEnabled('debug')) {
        this.log.debug({ who: formatIpv4(p.senderIp), mac: formatMac(p.senderMac) }, `arp: who-has ${formatIpv4(this.addr)}? answering`);
      }
      this.sendReply(p.senderMac, p.senderIp);
    }
  }

  /**
   * An entry hears from its neighbour. As Linux's arp_process: a reply (an answer to our
   * request) confirms reachability; a request only tells the address, which leaves the entry
   * STALE if the address changed and as it was otherwise.
   */
  private update(n: Neighbour, p: ArpPacket, now: number): void {
    const changed = n.mac === undefined || !macEquals(n.mac, p.senderMac);
    if (changed) n.mac = Uint8Array.from(p.senderMac);
    const confirmed = p.op === ARP_REPLY && macEquals(p.targetMac, this.mac);
    if (confirmed) {
      n.confirmedAt = now;
      const was = n.state;
      this.setState(n, 'REACHABLE', now + this.reachableTime(), was === 'INCOMPLETE' ? 'resolved' : 'confirmed');
      if (was === 'INCOMPLETE') {
        this.counters.inc('arp.resolved');
        this.flushQueue(n);
      }
    } else if (n.state === 'INCOMPLETE') {
      // A request from the address we are resolving tells us its MAC: usable, not confirmed.
      this.setState(n, 'STALE', now + this.cfg.gcStaleMs, 'learned from request');
      this.counters.inc('arp.resolved');
      this.flushQueue(n);
    } else if (changed) {
      this.setState(n, 'STALE', now + this.cfg.gcStaleMs, 'address changed');
    }
  }

  private flushQueue(n: Neighbour): void {
    const queue = n.queue;
    n.queue = [];
    n.queuedBytes = 0;
    for (const packet of queue) this.output(buildEthernet(n.mac!, this.mac, ETHERTYPE_IPV4, packet));
  }

  // ───────────── timers ─────────────

  /** Run every timer due at `now`: retransmit requests, age entries, announce. */
  poll(now: number): void {
    if (this.announced < this.cfg.announceCount && now >= this.announceAt) {
      this.announce();
      this.announced++;
      this.announceAt = now + this.cfg.announceIntervalMs;
      this.dirty = true;
    }
    if (this.nextDeadline() > now) return;
    for (const n of [...this.cache.values()]) {
      if (n.deadline <= now) this.expire(n, now);
    }
  }

  private expire(n: Neighbour, now: number): void {
    const cfg = this.cfg;
    switch (n.state) {
      case 'INCOMPLETE':
        if (n.probes < cfg.mcastSolicit) {
          n.probes++;
          this.sendRequest(n, BROADCAST_MAC);
          this.setDeadline(n, now + cfg.retransMs);
          return;
        }
        this.fail(n, now);
        return;
      case 'REACHABLE':
        this.setState(n, 'STALE', Math.max(now, n.usedAt) + cfg.gcStaleMs, 'reachable time passed');
        return;
      case 'STALE':
        if (now - n.usedAt >= cfg.gcStaleMs) this.remove(n, 'unused');
        else this.setDeadline(n, n.usedAt + cfg.gcStaleMs);
        return;
      case 'DELAY':
        n.probes = 1;
        this.sendRequest(n, n.mac!);
        this.setState(n, 'PROBE', now + cfg.retransMs, 'no confirmation');
        return;
      case 'PROBE':
        if (n.probes < cfg.ucastSolicit) {
          n.probes++;
          this.sendRequest(n, n.mac!);
          this.setDeadline(n, now + cfg.retransMs);
          return;
        }
        this.counters.inc('arp.failed');
        this.remove(n, 'probes unanswered');
        return;
    }
  }

  /** Resolution failed: every queued packet is answered with ICMP host unreachable. */
  private fail(n: Neighbour, now: number): void {
    this.counters.inc('arp.failed');
    const queue = n.queue;
    n.queue = [];
    n.queuedBytes = 0;
    this.remove(n, `no reply to ${n.probes} requests`);
    for (const packet of queue) this.unreachable(packet, now);
  }

  /** The earliest time poll() has work (Infinity: none). */
  nextDeadline(): number {
    if (!this.dirty) return this.earliest;
    let t = this.announced < this.cfg.announceCount ? this.announceAt : Infinity;
    for (const n of this.cache.values()) if (n.deadline < t) t = n.deadline;
    this.earliest = t;
    this.dirty = false;
    return t;
  }

  private reachableTime(): number {
    return Math.round(this.cfg.baseReachableMs * (0.5 + this.random()));
  }

  private setDeadline(n: Neighbour, at: number): void {
    n.deadline = at;
    this.dirty = true;
  }

  private setState(n: Neighbour, to: NeighbourState, deadline: number, cause: string): void {
    const from = n.state;
    n.state = to;
    if (to !== 'INCOMPLETE' && to !== 'PROBE') n.probes = 0;
    this.setDeadline(n, deadline);
    if (from !== to && this.log?.isLevelEnabled('debug')) {
      this.log.debug(
        { ip: formatIpv4(n.ip), mac: n.mac ? formatMac(n.mac) : null, from, to, cause },
        `arp: ${formatIpv4(n.ip)} ${from}=>${to} (${cause})`,
      );
    }
  }

  private remove(n: Neighbour, cause: string): void {
    this.cache.delete(n.ip);
    this.dirty = true;
    if (n.queue.length) this.counters.inc('arp.queue.dropped', n.queue.length);
    if (this.log?.isLevelEnabled('debug')) {
      this.log.debug({ ip: formatIpv4(n.ip), from: n.state, cause }, `arp: ${formatIpv4(n.ip)} ${n.state}=>gone (${cause})`);
    }
  }

  // ───────────── output ─────────────

  private sendRequest(n: Neighbour, to: Mac): void {
    this.counters.inc('arp.request.out');
    if (this.log?.isLevelEnabled('debug')) {
      this.log.debug({ ip: formatIpv4(n.ip), to: formatMac(to), attempt: n.probes + (n.state === 'INCOMPLETE' ? 0 : 1) },
        `arp: who-has ${formatIpv4(n.ip)} tell ${formatIpv4(this.addr)}`);
    }
    // RFC 826 leaves the target hardware address of a request open; Linux sends zeros
    // in a broadcast request and the cached address in a unicast probe.
    const targetMac = to === BROADCAST_MAC ? ZERO_MAC : to;
    this.emit(to, { op: ARP_REQUEST, senderMac: this.mac, senderIp: this.addr, targetMac, targetIp: n.ip });
  }

  private sendReply(to: Mac, targetIp: Ipv4Addr): void {
    this.counters.inc('arp.reply.out');
    this.emit(to, { op: ARP_REPLY, senderMac: this.mac, senderIp: this.addr, targetMac: to, targetIp });
  }

  /**
   * RFC 5227 section 2.3 announcement: a broadcast request with sender and target IP both
   * ours (and target MAC zero), so every host updates a stale entry for our address.
   */
  private announce(): void {
    this.counters.inc('arp.announce.out');
    this.log?.debug({ ip: formatIpv4(this.addr), mac: formatMac(this.mac) }, 'arp: gratuitous announcement');
    this.emit(BROADCAST_MAC, { op: ARP_REQUEST, senderMac: this.mac, senderIp: this.addr, targetMac: ZERO_MAC, targetIp: this.addr });
  }

  private emit(to: Mac, p: ArpPacket): void {
    this.output(buildEthernet(to, this.mac, ETHERTYPE_ARP, writeArp(p)));
  }

  private drop(reason: string): void {
    this.counters.inc('arp.drop.' + reason);
    if (this.log?.isLevelEnabled('debug')) this.log.debug({ reason }, 'arp drop');
  }

  // ───────────── introspection ─────────────

  neighbours(now: number): NeighbourInfo[] {
    return [...this.cache.values()].map((n) => ({
      ip: formatIpv4(n.ip),
      mac: n.mac ? formatMac(n.mac) : '',
      state: n.state as NeighbourState,
      queued: n.queue.length,
      probes: n.probes,
      confirmedAgoMs: n.confirmedAt < 0 ? -1 : now - n.confirmedAt,
    }));
  }

  /** Counters (arp.*). The entries themselves are neighbours(); their number is `size`. */
  stats(): Record<string, number> {
    return this.counters.snapshot();
  }

  /** Entries in the cache. */
  get size(): number {
    return this.cache.size;
  }

  /** The state of one entry, for tests and tools. */
  state(ip: Ipv4Addr): NeighbourState | undefined {
    return this.cache.get(ip)?.state as NeighbourState | undefined;
  }
}
