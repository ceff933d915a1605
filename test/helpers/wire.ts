/**
 * Raw packets for tests that play a peer at the wire, the way a hostile or broken host would
 * send them: IPv4 (with or without IP options, whole or in fragments), TCP with any option
 * bytes at all, UDP and ICMP. Checksums are right unless the caller corrupts a byte on purpose;
 * then the packet gets past every check up to the one under test.
 *
 * Well-formed TCP headers come from the stack's own writeTcp; only option bytes that writeTcp
 * refuses to produce (bad lengths, unknown kinds, window scale 15+) are spliced in here.
 * `describePacket` turns any byte string into one line for a failure message.
 */
import type { Ipv4Addr } from '../../src/ip/addr.js';
import { formatIpv4 } from '../../src/ip/addr.js';
import { checksumFinish, checksumPartial, internetChecksum, pseudoHeaderSum } from '../../src/ip/checksum.js';
import { ICMP_HEADER_LEN, parseIcmp, writeIcmp } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP, parseIpv4, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { TcpHeaderFields, TcpOptions } from '../../src/tcp/segment.js';
import { TCP_HEADER_LEN, formatSegment, optionsLength, parseTcp, writeTcp } from '../../src/tcp/segment.js';
import { UDP_HEADER_LEN, parseUdp, writeUdp } from '../../src/udp/udp.js';

const EMPTY = new Uint8Array(0);

export interface Ipv4Fields {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  protocol: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** In bytes (a multiple of 8). */
  fragmentOffset?: number;
  ttl?: number;
  /** IP option bytes (RFC 791 §3.1), padded here to a multiple of 4; at most 40. */
  options?: Uint8Array;
}

/** One IPv4 packet around `payload`, header checksum right. */
export function ipv4(f: Ipv4Fields, payload: Uint8Array = EMPTY): Uint8Array {
  const optLen = f.options ? (f.options.length + 3) & ~3 : 0;
  if (optLen > 40) throw new RangeError('ipv4: at most 40 bytes of IP options');
  const ihl = IPV4_HEADER_LEN + optLen;
  const packet = new Uint8Array(ihl + payload.length);
  packet.set(payload, ihl);
  writeIpv4Header(packet, 0, { ...f, id: f.id ?? 0, totalLength: packet.length });
  if (optLen > 0) {
    packet.set(f.options!, IPV4_HEADER_LEN); // the padding stays zero: End of Option List
    packet[0] = 0x40 | (ihl / 4);
    setIpv4Checksum(packet);
  }
  return packet;
}

/** Recompute the IPv4 header checksum after editing header bytes (IHL from byte 0). */
export function setIpv4Checksum(packet: Uint8Array): void {
  const ihl = (packet[0]! & 0x0f) * 4;
  packet[10] = 0;
  packet[11] = 0;
  const sum = internetChecksum(packet, 0, Math.min(ihl, packet.length));
  packet[10] = sum >>> 8;
  packet[11] = sum & 0xff;
}

/**
 * One TCP option as it goes on the wire: kind, length, data (`len` overrides the true length,
 * to lie about it), or a single byte as it is (0 End of Option List, 1 No-Operation, or any).
 */
export type RawOption = { kind: number; len?: number; data?: readonly number[] } | number;

/** Option bytes, padded with End of Option List to a multiple of 4 (RFC 9293 §3.2). */
export function rawOptions(list: readonly RawOption[]): Uint8Array {
  const bytes: number[] = [];
  for (const o of list) {
    if (typeof o === 'number') bytes.push(o);
    else bytes.push(o.kind, o.len ?? 2 + (o.data?.length ?? 0), ...(o.data ?? []));
  }
  while (bytes.length % 4 !== 0) bytes.push(0);
  if (bytes.length > 40) throw new RangeError('rawOptions: at most 40 bytes of TCP options');
  return Uint8Array.from(bytes);
}

export interface TcpFields extends TcpHeaderFields {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  /** Option bytes taken as they are, instead of `options`. */
  raw?: Uint8Array;
}

/** A TCP segment (header, options, payload), checksum right. Not yet inside an IP packet. */
export function tcp(f: TcpFields, payload: Uint8Array = EMPTY): Uint8Array {
  if (f.raw === undefined) {
    const options: TcpOptions = f.options ?? {};
    const hlen = TCP_HEADER_LEN + optionsLength(options);
    const seg = new Uint8Array(hlen + payload.length);
    seg.set(payload, hlen);
    writeTcp(seg, 0, { ...f, options }, payload.length, f.src, f.dst);
    return seg;
  }
  // The header from writeTcp, then the raw option bytes between it and the payload.
  const hlen = TCP_HEADER_LEN + f.raw.length;
  const seg = new Uint8Array(hlen + payload.length);
  writeTcp(seg, 0, { ...f, options: {} }, 0, f.src, f.dst);
  seg.set(f.raw, TCP_HEADER_LEN);
  seg.set(payload, hlen);
  seg[12] = (hlen / 4) << 4;
  setTransportChecksum(seg, PROTO_TCP, f.src, f.dst);
  return seg;
}

/** Recompute a TCP or UDP checksum (pseudo-header included) after editing the segment. */
export function setTransportChecksum(seg: Uint8Array, protocol: number, src: Ipv4Addr, dst: Ipv4Addr): void {
  const at = protocol === PROTO_TCP ? 16 : 6;
  seg[at] = 0;
  seg[at + 1] = 0;
  let sum = checksumFinish(checksumPartial(seg, 0, seg.length, pseudoHeaderSum(src, dst, protocol, seg.length)));
  if (protocol === PROTO_UDP && sum === 0) sum = 0xffff; // zero means "no checksum" (RFC 768)
  seg[at] = sum >>> 8;
  seg[at + 1] = sum & 0xff;
}

/** A UDP datagram (header and data), checksum right. */
export function udp(f: { src: Ipv4Addr; dst: Ipv4Addr; srcPort: number; dstPort: number }, data: Uint8Array = EMPTY): Uint8Array {
  const d = new Uint8Array(UDP_HEADER_LEN + data.length);
  d.set(data, UDP_HEADER_LEN);
  writeUdp(d, 0, { ...f, payloadLength: data.length });
  return d;
}

/** An ICMP message (header and data), checksum right. */
export function icmp(f: { type: number; code: number; restOfHeader?: number }, data: Uint8Array = EMPTY): Uint8Array {
  const m = new Uint8Array(ICMP_HEADER_LEN + data.length);
  m.set(data, ICMP_HEADER_LEN);
  writeIcmp(m, 0, f, data.length);
  return m;
}

/**
 * Cut `payload` into fragments (RFC 791 §3.2) at the given data offsets (multiples of 8,
 * ascending, the first 0); every piece but the last has MF set.
 */
export function fragments(f: Omit<Ipv4Fields, 'mf' | 'fragmentOffset' | 'df'>, payload: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < cuts.length; i++) {
    const from = cuts[i]!;
    const to = i + 1 < cuts.length ? cuts[i + 1]! : payload.length;
    out.push(ipv4({ ...f, mf: i + 1 < cuts.length, fragmentOffset: from }, payload.subarray(from, to)));
  }
  return out;
}

/**
 * One line for any byte string: the IPv4 header, then TCP in tcpdump style (absolute
 * sequence numbers), UDP ports or ICMP type; whatever does not decode is shown in hex.
 */
export function describePacket(p: Uint8Array): string {
  const ip = parseIpv4(p);
  if ('error' in ip) return `${p.length} bytes, not IPv4 (${ip.error}): ${hex(p, 64)}`;
  const h = ip.header;
  let line = `${formatIpv4(h.src)} > ${formatIpv4(h.dst)} proto ${h.protocol} id ${h.id}`;
  if (h.df) line += ' DF';
  if (h.mf) line += ' MF';
  if (h.fragmentOffset > 0) line += ` off ${h.fragmentOffset}`;
  if (h.ihl > IPV4_HEADER_LEN) line += ` ihl ${h.ihl}`;
  line += ` len ${h.totalLength}`;
  if (h.mf || h.fragmentOffset > 0) return `${line} | fragment: ${hex(ip.payload, 24)}`;
  const body = ip.payload;
  if (h.protocol === PROTO_TCP) {
    const seg = parseTcp(body, h.src, h.dst, false);
    if ('error' in seg) return `${line} | TCP ${seg.error}: ${hex(body, 64)}`;
    const sumOk = !('error' in parseTcp(body, h.src, h.dst));
    return `${line} | TCP ${seg.srcPort} > ${seg.dstPort} ${formatSegment(seg)}${sumOk ? '' : ' (bad checksum)'}`;
  }
  if (h.protocol === PROTO_UDP) {
    const d = parseUdp(body, h.src, h.dst);
    if ('error' in d) return `${line} | UDP ${d.error}: ${hex(body, 32)}`;
    return `${line} | UDP ${d.srcPort} > ${d.dstPort} ${d.payload.length} bytes`;
  }
  if (h.protocol === PROTO_ICMP) {
    const m = parseIcmp(body);
    if ('error' in m) return `${line} | ICMP ${m.error}: ${hex(body, 32)}`;
    return `${line} | ICMP type ${m.type} code ${m.code}, ${m.data.length} bytes`;
  }
  return `${line} | ${hex(body, 32)}`;
}

function hex(b: Uint8Array, max: number): string {
  const s = Buffer.from(b.subarray(0, max)).toString('hex');
  return b.length > max ? `${s}... (${b.length} bytes)` : s;
}
