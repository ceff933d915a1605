/**
 * The data-link layer of TAP mode, between the IP layer and a link that moves Ethernet
 * frames: it unframes what arrives (IPv4 up to IP, ARP to the neighbour cache, the rest
 * counted and dropped) and frames what IP sends, to the MAC address of the next hop that
 * ARP resolves.
 *
 *     IpLayer ──send(packet, nextHop)──▶ EthernetLayer ──frames──▶ TAP device
 *        ▲                                  │   ▲
 *        └──────────── IPv4 payload ◀───────┘   └─ Arp: neighbour cache, requests, replies
 *
 * Sans-I/O like the protocols: `now` comes in, frames go out through `output`.
 */
import type { Logger } from 'pino';
import { isMulticast, prefixMask } from '../ip/addr.js';
import type { Ipv4Addr } from '../ip/addr.js';
import { Counters } from '../ip/stats.js';
import { Arp } from './arp.js';
import type { ArpConfig, NeighbourInfo } from './arp.js';
import {
  BROADCAST_MAC,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  buildEthernet,
  isBroadcastMac,
  macEquals,
  multicastMac,
  parseEthernet,
} from './ethernet.js';
import type { Mac } from './ethernet.js';

export interface EthernetLayerOptions {
  /** Our MAC address (unicast). */
  mac: Mac;
  /** Our IPv4 address and the on-link subnet's prefix length. */
  addr: Ipv4Addr;
  prefix: number;
  /** An IPv4 packet that arrived for us (padding after its total length may follow). */
  deliver: (packet: Uint8Array, now: number) => void;
  /** A frame to transmit. */
  output: (frame: Uint8Array) => void;
  /** A packet we sent whose next hop did not answer ARP (see IpLayer.localUnreachable). */
  unreachable: (packet: Uint8Array, now: number) => void;
  /** Multicast MACs we accept besides broadcast (none by default: we join no group). */
  multicast?: Mac[];
  arp?: Partial<ArpConfig>;
  random?: () => number;
  log?: Logger | undefined;
}

export class EthernetLayer {
  readonly mac: Mac;
  readonly arp: Arp;
  private readonly deliver: (packet: Uint8Array, now: number) => void;
  private readonly output: (frame: Uint8Array) => void;
  private readonly multicast: Mac[];
  /** The subnet's directed broadcast (none on /31 and /32, RFC 3021). */
  private readonly subnetBroadcast: Ipv4Addr | undefined;
  private readonly counters = new Counters(['eth.in', 'eth.out']);

  constructor(opts: EthernetLayerOptions) {
    this.mac = opts.mac;
    this.deliver = opts.deliver;
    this.output = opts.output;
    this.multicast = opts.multicast ?? [];
    this.subnetBroadcast = opts.prefix <= 30 ? (opts.addr | ~prefixMask(opts.prefix)) >>> 0 : undefined;
    this.arp = new Arp({
      mac: opts.mac,
      addr: opts.addr,
      prefix: opts.prefix,
      output: (frame) => this.transmit(frame),
      unreachable: opts.unreachable,
      config: opts.arp,
      random: opts.random,
      log: opts.log,
    });
  }

  /** One frame from the device. Never throws on any input. */
  receive(frame: Uint8Array, now: number): void {
    this.counters.inc('eth.in');
    const f = parseEthernet(frame);
    if ('error' in f) return this.counters.inc('eth.drop.' + f.error);
    // A TAP device hands us everything the kernel (or a bridge) sends on the segment: keep
    // frames for our MAC, broadcast, and the multicast groups we joined.
    if (!macEquals(f.dst, this.mac) && !isBroadcastMac(f.dst) && !this.multicast.some((m) => macEquals(m, f.dst))) {
      return this.counters.inc('eth.drop.not-for-us');
    }
    if (macEquals(f.src, this.mac)) return this.counters.inc('eth.drop.looped');
    if (f.etherType === ETHERTYPE_IPV4) return this.deliver(f.payload, now);
    if (f.etherType === ETHERTYPE_ARP) return this.arp.receive(f.payload, f.src, now);
    this.counters.inc('eth.drop.ethertype'); // IPv6, LLDP, ...: not spoken here
  }

  /** Frame an IPv4 packet for `nextHop` (resolving its MAC first if need be). */
  send(packet: Uint8Array, nextHop: Ipv4Addr, now: number): void {
    let dst: Mac | undefined;
    if (nextHop === 0xffffffff || nextHop === this.subnetBroadcast) dst = BROADCAST_MAC;
    else if (isMulticast(nextHop)) dst = multicastMac(nextHop);
    else dst = this.arp.resolve(nextHop, packet, now);
    if (dst !== undefined) this.transmit(buildEthernet(dst, this.mac, ETHERTYPE_IPV4, packet));
  }

  private transmit(frame: Uint8Array): void {
    this.counters.inc('eth.out');
    this.output(frame);
  }

  poll(now: number): void {
    this.arp.poll(now);
  }

  nextDeadline(): number {
    return this.arp.nextDeadline();
  }

  neighbours(now: number): NeighbourInfo[] {
    return this.arp.neighbours(now);
  }

  stats(): Record<string, number> {
    return { ...this.counters.snapshot(), ...this.arp.stats() };
  }
}
