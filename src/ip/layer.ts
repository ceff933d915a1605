/**
 * The IPv4 layer of a host (RFC 1122 section 3): validates incoming packets, reassembles
 * fragments, answers ICMP, and hands each datagram to the transport registered for its
 * protocol number. On the way out it writes the IPv4 header and fragments when allowed.
 *
 * Sans-I/O: packets come in through `receive(packet, now)` and leave through the
 * `transmit` callback with their next hop (RFC 1122 section 3.3.1: the destination itself
 * when it is on-link, else the gateway); the only time is the `now` passed in.
 */
import type { Logger } from 'pino';
import { formatIpv4, inSubnet, isMulticast, isUnicastSource, prefixMask } from './addr.js';
import type { Ipv4Addr } from './addr.js';
import {
  Icmp,
  ICMP_DEST_UNREACHABLE,
  ICMP_HEADER_LEN,
  ICMP_TIME_EXCEEDED,
  TIME_EXCEEDED_REASSEMBLY,
  UNREACH_HOST,
  UNREACH_PROTOCOL,
  writeIcmp,
} from './icmp.js';
import { IPV4_HEADER_LEN, MIN_MTU, PROTO_ICMP, hasSourceRoute, parseIpv4, writeIpv4Header } from './ipv4.js';
import type { Ipv4Header, Ipv4HeaderFields } from './ipv4.js';
import { Reassembler } from './reassembly.js';
import type { VirtioNetHdr } from '../link/virtio.js';
import { Counters } from './stats.js';

/** An ICMP error (RFC 792) about a datagram we sent, as the transport that sent it sees it. */
export interface IcmpErrorInfo {
  type: number;
  code: number;
  /** next-hop MTU of a fragmentation-needed message (type 3 code 4), else 0 */
  mtu: number;
  /** the quoted datagram's IPv4 header */
  src: Ipv4Addr;
  dst: Ipv4Addr;
  protocol: number;
  /** the quoted transport header and data: at least 8 bytes, as many as the ICMP message carried */
  quoted: Uint8Array;
}

/** A transport protocol above IP (TCP, UDP). */
export interface IpUpper {
  /** A whole (reassembled if need be) datagram addressed to us. `payload` is a view.
   *  `checksumTrusted`: the link vouches for the transport checksum (offload, see virtio.ts checkRx). */
  receive(header: Ipv4Header, payload: Uint8Array, now: number, checksumTrusted?: boolean): void;
  /** an ICMP error quoting a datagram this protocol sent (quoted src = our address); validated, counted */
  onIcmpError?(err: IcmpErrorInfo, now: number): void;
}

const MAX_DATAGRAM = 65535;

export interface IpLayerOptions {
  addr: Ipv4Addr;
  /** Largest packet (header included) handed to `transmit`. */
  mtu: number;
  /** Hand a packet to the link, for the host `nextHop` on it (ignored by point-to-point links),
   *  with its offload header when it has one (a TCP super-segment, a partial checksum). */
  transmit: (packet: Uint8Array, nextHop: Ipv4Addr, now: number, meta?: VirtioNetHdr) => void;
  /**
   * The on-link subnet (our address / prefix) and the gateway for everything else. Without
   * a gateway every destination is taken to be on-link (a point-to-point link such as TUN).
   * When the prefix is given (and at most 30), packets whose source is the subnet's network
   * or broadcast address are dropped: no single host has those addresses (RFC 1122 §3.2.1.3),
   * so such a packet is spoofed, or an attempt to make us answer to everyone (Linux treats a
   * broadcast source as a martian).
   */
  prefix?: number;
  gateway?: Ipv4Addr;
  log?: Logger;
  reassembly?: ConstructorParameters<typeof Reassembler>[0];
  /** ICMP errors per second (token bucket, burst 50). Default 100. */
  icmpErrorsPerSecond?: number;
}

export class IpLayer {
  readonly addr: Ipv4Addr;
  readonly mtu: number;
  private readonly transmit: IpLayerOptions['transmit'];
  private readonly prefix: number;
  private readonly gateway: Ipv4Addr | undefined;
  private readonly log: Logger | undefined;
  private readonly uppers: Array<IpUpper | undefined> = new Array(256).fill(undefined);
  private readonly counters = new Counters([
    'ip.in',
    'ip.out',
    'ip.delivered',
    'ip.frag.in',
    'ip.frag.out',
    'ip.reassembled',
    'icmp.in',
    'icmp.echo',
    'icmp.unreachable.out',
  ]);
  private readonly reassembler: Reassembler;
  private readonly icmp: Icmp;
  /** Identification for the next datagram. A plain counter: RFC 6864 only needs IDs to be
   *  unique per (src, dst, protocol) within a reassembly timeout, for fragmented datagrams. */
  private nextId = 0;
  /** The header fields of the datagram send() is writing, filled in per packet (writeIpv4Header keeps nothing). */
  private readonly header: Ipv4HeaderFields;
  /** The subnet's network and broadcast addresses (undefined when no prefix, or /31 and /32, RFC 3021). */
  private readonly subnetNetwork: Ipv4Addr | undefined;
  private readonly subnetBroadcast: Ipv4Addr | undefined;

  constructor(opts: IpLayerOptions) {
    if (!Number.isInteger(opts.mtu) || opts.mtu < MIN_MTU || opts.mtu > MAX_DATAGRAM) {
      throw new RangeError(`IpLayer: mtu must be an integer in ${MIN_MTU}..${MAX_DATAGRAM}, got ${opts.mtu}`);
    }
    this.addr = opts.addr >>> 0;
    this.header = { totalLength: 0, id: 0, df: true, protocol: 0, src: this.addr, dst: 0 };
    this.mtu = opts.mtu;
    this.transmit = opts.transmit;
    this.prefix = opts.prefix ?? 32;
    this.gateway = opts.gateway;
    this.log = opts.log;
    this.reassembler = new Reassembler(opts.reassembly);
    this.icmp = new Icmp(this, this.counters, { errorsPerSecond: opts.icmpErrorsPerSecond ?? 100, errorBurst: 50, log: opts.log });
    if (opts.prefix !== undefined && opts.prefix >= 1 && opts.prefix <= 30) {
      const mask = prefixMask(opts.prefix);
      this.subnetNetwork = (this.addr & mask) >>> 0;
      this.subnetBroadcast = (this.subnetNetwork | ~mask) >>> 0;
    }
  }

  /** Deliver datagrams of `protocol` (6 TCP, 17 UDP, ...) to `upper`. ICMP is built in. */
  register(protocol: number, upper: IpUpper): void {
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255 || protocol === PROTO_ICMP) {
      throw new RangeError(`IpLayer.register: cannot register protocol ${protocol}`);
    }
    this.uppers[protocol] = upper;
  }

  /** One raw IPv4 packet from the link. Never throws on any input. `checksumTrusted`: see IpUpper.receive. */
  receive(packet: Uint8Array, now: number, checksumTrusted = false): void {
    this.counters.inc('ip.in');
    const parsed = parseIpv4(packet);
    if ('error' in parsed) return this.drop(parsed.error);
    let header = parsed.header;
    let payload = parsed.payload;
    // A host discards datagrams not addressed to it (RFC 1122 section 3.2.1.3); it does not forward.
    if (header.dst !== this.addr) return this.drop('not-for-us', header);
    // ...and datagrams whose source cannot be a single host, or claims to be us.
    if (!isUnicastSource(header.src) || header.src === this.addr) return this.drop('bad-src', header);
    if (header.src === this.subnetNetwork) return this.drop('src-network', header);
    if (header.src === this.subnetBroadcast) return this.drop('src-broadcast', header);
    // Source routes are refused, as Linux does by default (accept_source_route = 0).
    if (header.ihl > IPV4_HEADER_LEN && hasSourceRoute(packet, header.ihl)) return this.drop('source-route', header);

    if (header.mf || header.fragmentOffset > 0) {
      checksumTrusted = false;
      this.counters.inc('ip.frag.in');
      const whole = this.reassembler.add(header, payload, now);
      if (whole === undefined) return;
      this.counters.inc('ip.reassembled');
      // The reassembled datagram, described as if it had arrived in one piece.
      header = { ...header, mf: false, fragmentOffset: 0, totalLength: header.ihl + whole.length };
      payload = whole;
    }

    if (header.protocol === PROTO_ICMP) {
      this.counters.inc('ip.delivered');
      this.icmp.receive(header, payload, now);
      return;
    }
    const upper = this.uppers[header.protocol];
    if (upper) {
      this.counters.inc('ip.delivered');
      upper.receive(header, payload, now, checksumTrusted);
      return;
    }
    // RFC 1122 section 3.2.2.1: a host SHOULD send Protocol Unreachable for a protocol it lacks.
    this.drop('unknown-protocol', header);
    this.sendUnreachable(UNREACH_PROTOCOL, header, payload, now);
  }

  /**
   * `packet` has IPV4_HEADER_LEN bytes of headroom at offset 0, then the transport header
   * and data. Writes the IPv4 header (src = our address, TTL 64, DF unless opts.df ===
   * false) and transmits; a packet larger than the MTU is fragmented if DF is off,
   * otherwise counted and dropped. A TCP super-segment (`opts.meta` with a GSO type, for a link
   * that does offload) may be larger than the MTU: the link cuts it into `gsoSize` pieces, giving
   * them consecutive IDs as Linux's TSO does, so the next ID skips past them.
   */
  send(packet: Uint8Array, dst: Ipv4Addr, protocol: number, now: number, opts?: { df?: boolean; meta?: VirtioNetHdr }): void {
    const totalLength = packet.length;
    if (totalLength < IPV4_HEADER_LEN || totalLength > MAX_DATAGRAM) return this.drop('out-bad-length');
    const df = opts?.df ?? true;
    const meta = opts?.meta;
    const id = this.nextId;
    const gsoSize = meta !== undefined && meta.gsoType !== 0 ? meta.gsoSize : 0;
    const pieces = gsoSize > 0 ? Math.max(1, Math.ceil((totalLength - meta!.hdrLen) / gsoSize)) : 1;
    this.nextId = (id + pieces) & 0xffff;
    if (totalLength <= this.mtu || gsoSize > 0) {
      const h = this.header;
      h.totalLength = totalLength;
      h.id = id;
      h.df = df;
      h.protocol = protocol;
      h.dst = dst;
      writeIpv4Header(packet, 0, h);
      this.counters.inc('ip.out');
      this.transmit(packet, this.nextHop(dst), now, meta);
      return;
    }
    if (df) return this.drop('out-too-big-df');
    this.fragment(packet.subarray(IPV4_HEADER_LEN), id, protocol, dst, now);
  }

  /**
   * RFC 1122 section 3.3.1.1: a destination on our subnet is reached directly; any other
   * goes to the gateway (here the only route: the host side of the link). Broadcast and
   * multicast are sent on the link as they are.
   */
  nextHop(dst: Ipv4Addr): Ipv4Addr {
    if (this.gateway === undefined || dst === 0xffffffff || isMulticast(dst) || inSubnet(dst, this.addr, this.prefix)) return dst;
    return this.gateway;
  }

  /**
   * A packet we sent could not be delivered on the link (its next hop never answered ARP):
   * report Destination Unreachable, code 1 (host), to our own ICMP as if it had come back
   * to us, as Linux does for a failed neighbour resolution (neigh_invalidate ->
   * ipv4_link_failure -> icmp_send). `packet` is the complete IPv4 packet as we sent it.
   */
  localUnreachable(packet: Uint8Array, now: number): void {
    const parsed = parseIpv4(packet);
    if ('error' in parsed || parsed.header.src !== this.addr) return this.drop('local-unreachable-unparsable');
    this.counters.inc('icmp.unreachable.local');
    const quoted = Math.min(parsed.header.ihl + 8, parsed.header.totalLength);
    const icmpLen = ICMP_HEADER_LEN + quoted;
    const msg = new Uint8Array(IPV4_HEADER_LEN + icmpLen);
    msg.set(packet.subarray(0, quoted), IPV4_HEADER_LEN + ICMP_HEADER_LEN);
    writeIcmp(msg, IPV4_HEADER_LEN, { type: ICMP_DEST_UNREACHABLE, code: UNREACH_HOST }, quoted);
    writeIpv4Header(msg, 0, { totalLength: msg.length, id: 0, df: false, protocol: PROTO_ICMP, src: this.addr, dst: this.addr });
    const own = parseIpv4(msg);
    if ('error' in own) return;
    if (this.log?.isLevelEnabled('debug')) {
      this.log.debug({ dst: formatIpv4(parsed.header.dst), protocol: parsed.header.protocol }, 'ip: host unreachable (no ARP reply)');
    }
    this.icmp.receive(own.header, own.payload, now);
  }

  /**
   * RFC 791 section 3.2 fragmentation: cut the data into pieces of the largest multiple of
   * 8 bytes that fits after a 20-byte header; all pieces share the ID, all but the last
   * have MF set, and each carries its offset. Each fragment is a fresh buffer.
   */
  private fragment(data: Uint8Array, id: number, protocol: number, dst: Ipv4Addr, now: number): void {
    const nextHop = this.nextHop(dst);
    const chunk = ((this.mtu - IPV4_HEADER_LEN) >>> 3) << 3;
    for (let off = 0; off < data.length; off += chunk) {
      const n = Math.min(chunk, data.length - off);
      const frag = new Uint8Array(IPV4_HEADER_LEN + n);
      frag.set(data.subarray(off, off + n), IPV4_HEADER_LEN);
      const mf = off + n < data.length;
      writeIpv4Header(frag, 0, { totalLength: frag.length, id, df: false, mf, fragmentOffset: off, protocol, src: this.addr, dst });
      this.counters.inc('ip.out');
      this.counters.inc('ip.frag.out');
      this.transmit(frag, nextHop, now);
    }
  }

  /**
   * RFC 792 Destination Unreachable about a datagram we received (`payload` is its data).
   * Rate-limited; never sent about an ICMP error, a broadcast/multicast, a non-first
   * fragment or a source that is not a host (RFC 1122 section 3.2.2).
   */
  sendUnreachable(code: number, header: Ipv4Header, payload: Uint8Array, now: number): void {
    this.icmp.sendError(ICMP_DEST_UNREACHABLE, code, header, payload, now);
  }

  /**
   * An ICMP error whose quote the ICMP module has checked (icmp.ts parseQuotedDatagram): hand it to
   * the protocol that sent the quoted datagram (RFC 1122 sections 3.2.2, 4.1.3.3, 4.2.3.9: "MUST be
   * passed to the transport layer"). An error about a protocol with no error handler is counted.
   */
  deliverIcmpError(err: IcmpErrorInfo, now: number): void {
    const upper = this.uppers[err.protocol];
    if (!upper?.onIcmpError) {
      this.counters.inc('icmp.error.unclaimed');
      return;
    }
    this.counters.inc('icmp.error.delivered');
    upper.onIcmpError(err, now);
  }

  /** Expire fragment reassembly; tell the sender (Time Exceeded, code 1) when we can. */
  poll(now: number): void {
    this.reassembler.poll(now, (first, firstBytes) => {
      this.icmp.sendError(ICMP_TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY, first, firstBytes, now);
    });
  }

  nextDeadline(): number {
    return this.reassembler.nextDeadline();
  }

  /** Flat counters: ip.*, icmp.*, and the reassembler's as ip.reasm.*. */
  stats(): Record<string, number> {
    const out = this.counters.snapshot();
    for (const [k, v] of Object.entries(this.reassembler.stats)) out['ip.reasm.' + k] = v;
    out['ip.reasm.buffered-bytes'] = this.reassembler.bufferedBytes;
    return out;
  }

  private drop(reason: string, header?: Ipv4Header): void {
    this.counters.inc('ip.drop.' + reason);
    if (this.log?.isLevelEnabled('debug')) {
      this.log.debug(
        header ? { reason, src: formatIpv4(header.src), dst: formatIpv4(header.dst), protocol: header.protocol } : { reason },
        'ip drop',
      );
    }
  }
}
