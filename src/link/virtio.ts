/**
 * The virtio-net header (struct virtio_net_hdr, Virtio 1.x §5.1.6, Linux include/uapi/linux/virtio_net.h)
 * that a TUN opened with IFF_VNET_HDR puts before every packet, both ways. Sans-I/O: a codec, the
 * checks a header from outside must pass, and the two things a NIC would do with an offload request —
 * completing a partial checksum and cutting a TCP super-segment into MSS-sized segments (GSO) —
 * written here so that MemoryLink/FaultyLink can emulate offload and tests can check what the kernel
 * will make of our super-segments.
 *
 *     0        1          2        4         6           8            10
 *     +--------+----------+--------+---------+-----------+------------+
 *     | flags  | gso_type | hdr_len| gso_size| csum_start| csum_offset|   16-bit fields little-endian
 *     +--------+----------+--------+---------+-----------+------------+   (TUNSETVNETLE, tun.c)
 *
 *   flags NEEDS_CSUM  the transport checksum field holds only the pseudo-header sum; the device sums
 *                     [csum_start, end) and stores the result at csum_start + csum_offset
 *         DATA_VALID  (receive) the kernel has verified the checksum
 *   gso_type TCPV4    a TCP/IPv4 super-segment: cut its payload into gso_size-byte segments, each with
 *                     a copy of the headers (hdr_len bytes of them), sequence numbers, IP IDs, lengths
 *                     and checksums adjusted; FIN and PSH only on the last, CWR only on the first
 *
 * Everything here comes from the kernel or a peer emulation: `checkRx` never throws and names a drop
 * reason for any header that does not describe the packet it came with.
 */
import { readIpv4 } from '../ip/addr.js';
import { checksumFinish, checksumPartial, pseudoHeaderSum } from '../ip/checksum.js';

/** Header length we ask for with TUNSETVNETHDRSZ (see tun.c for why 10 and not 12). */
export const VIRTIO_NET_HDR_LEN = 10;

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
/** Or'ed into gso_type: the super-segment had CWR set (only the first segment keeps it). */
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** Largest IPv4 packet, and so the largest super-segment (Linux's default gso_max_size is 64 KiB). */
export const GSO_MAX_PACKET = 65535;
/** At most this many segments per super-segment (Linux's GSO_MAX_SEGS is larger; 64 keeps bursts sane). */
export const GSO_MAX_SEGS = 64;

export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  /** Bytes of headers (IP + TCP) each segment repeats. */
  hdrLen: number;
  /** Payload bytes per segment (the MSS). */
  gsoSize: number;
  /** Offset of the first byte the checksum covers (the transport header), from the IP header. */
  csumStart: number;
  /** Offset of the checksum field from csumStart (TCP 16, UDP 6). */
  csumOffset: number;
}

/**
 * The header the kernel puts on nearly every packet it hands us: "checksum verified", nothing else.
 * Decoded to this one shared (frozen) object instead of a new one per received packet.
 */
const DATA_VALID_ONLY: VirtioNetHdr = Object.freeze({ flags: VIRTIO_NET_HDR_F_DATA_VALID, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });

/** Decode the header at buf[off..off+10). A header of all zeros is undefined (nothing asked). */
export function readVirtioHdr(buf: Uint8Array, off: number): VirtioNetHdr | undefined {
  const flags = buf[off]!;
  const gsoType = buf[off + 1]!;
  const hdrLen = buf[off + 2]! | (buf[off + 3]! << 8);
  const gsoSize = buf[off + 4]! | (buf[off + 5]! << 8);
  const csumStart = buf[off + 6]! | (buf[off + 7]! << 8);
  const csumOffset = buf[off + 8]! | (buf[off + 9]! << 8);
  const rest = gsoType | hdrLen | gsoSize | csumStart | csumOffset;
  if (rest === 0) {
    if (flags === 0) return undefined;
    if (flags === VIRTIO_NET_HDR_F_DATA_VALID) return DATA_VALID_ONLY;
  }
  return { flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset };
}

/** Encode `h` (or all zeros) at buf[off..off+10). */
export function writeVirtioHdr(buf: Uint8Array, off: number, h: VirtioNetHdr | undefined): void {
  if (h === undefined) {
    buf.fill(0, off, off + VIRTIO_NET_HDR_LEN);
    return;
  }
  buf[off] = h.flags;
  buf[off + 1] = h.gsoType;
  buf[off + 2] = h.hdrLen;
  buf[off + 3] = h.hdrLen >>> 8;
  buf[off + 4] = h.gsoSize;
  buf[off + 5] = h.gsoSize >>> 8;
  buf[off + 6] = h.csumStart;
  buf[off + 7] = h.csumStart >>> 8;
  buf[off + 8] = h.csumOffset;
  buf[off + 9] = h.csumOffset >>> 8;
}

export const VIRTIO_DROP_REASONS = ['gso-type', 'gso-size', 'gso-not-tcp', 'hdr-len', 'csum-range'] as const;
export type VirtioDropReason = (typeof VIRTIO_DROP_REASONS)[number];

/**
 * What the stack does with a received packet and its header:
 *   'plain'     verify everything as usual (no header, or nothing it claims)
 *   'trusted'   the TCP checksum need not be verified: DATA_VALID (the kernel checked it), or NEEDS_CSUM
 *               on TCP (a packet from the host's own stack that never crossed a wire; Linux's receive
 *               path treats CHECKSUM_PARTIAL as verified the same way, skb_csum_unnecessary)
 *   'complete'  NEEDS_CSUM on something else (UDP from the host): the checksum must be completed in
 *               place first (completeChecksum), then it is verified as usual
 * or a drop reason when the header does not fit the packet.
 */
export type RxVerdict = 'plain' | 'trusted' | 'complete' | { drop: VirtioDropReason };

const PROTO_TCP = 6;
const TCP_CSUM_OFFSET = 16;

/**
 * Check a received header against its IPv4 packet. Hostile values are dropped, never trusted:
 * gso_size 0, an unknown gso_type (or TCPV6/UDP, which we never asked for), GSO on anything but
 * TCP/IPv4, hdr_len past the packet, a checksum range that starts inside the IPv4 header or ends
 * past the packet. Never throws.
 */
export function checkRx(h: VirtioNetHdr | undefined, packet: Uint8Array): RxVerdict {
  if (h === undefined) return 'plain';
  const len = packet.length;
  const ihl = len >= 20 ? (packet[0]! & 0x0f) * 4 : 20;
  const isTcp = len >= 20 && packet[9] === PROTO_TCP && (packet[0]! >>> 4) === 4;
  const gso = h.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
  if (gso !== VIRTIO_NET_HDR_GSO_NONE) {
    if (gso !== VIRTIO_NET_HDR_GSO_TCPV4) return { drop: 'gso-type' };
    if (h.gsoSize === 0) return { drop: 'gso-size' };
    if (!isTcp) return { drop: 'gso-not-tcp' };
    if (h.hdrLen > len) return { drop: 'hdr-len' };
  } else if (h.gsoType !== 0) {
    return { drop: 'gso-type' }; // the ECN bit without a GSO type means nothing
  }
  if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    if (h.csumStart < ihl || h.csumStart + h.csumOffset + 2 > len) return { drop: 'csum-range' };
    if (isTcp && h.csumStart === ihl && h.csumOffset === TCP_CSUM_OFFSET) return 'trusted';
    if (gso !== VIRTIO_NET_HDR_GSO_NONE) return { drop: 'csum-range' }; // TCP GSO with the checksum elsewhere
    return 'complete';
  }
  if (h.flags & VIRTIO_NET_HDR_F_DATA_VALID) return 'trusted';
  return 'plain';
}

/**
 * Finish a partial checksum in place (what a NIC does for NEEDS_CSUM): the field at
 * csumStart + csumOffset holds the pseudo-header sum; sum [csumStart, end) with it and store the
 * complement. The caller checked the range (checkRx).
 */
export function completeChecksum(packet: Uint8Array, csumStart: number, csumOffset: number): void {
  const sum = checksumPartial(packet, csumStart, packet.length);
  let c = checksumFinish(sum);
  // UDP: a computed 0 is sent as 0xffff (RFC 768); for TCP 0 and 0xffff are the same sum.
  if (csumOffset === 6 && c === 0) c = 0xffff;
  packet[csumStart + csumOffset] = c >>> 8;
  packet[csumStart + csumOffset + 1] = c & 0xff;
}

/**
 * The header for a TCP/IPv4 segment we built with a partial checksum (the field holds the folded
 * pseudo-header sum): NEEDS_CSUM always, and GSO when the payload is longer than `mss`.
 */
export function tcpTxHeader(ipHeaderLen: number, tcpHeaderLen: number, payloadLen: number, mss: number): VirtioNetHdr {
  const gso = payloadLen > mss;
  if (!gso && ipHeaderLen === 20) {
    // The common case (every ACK and small segment): the header depends on the TCP header length
    // only, so one shared frozen object per length instead of a new one per segment.
    return (PLAIN_TX_HEADERS[tcpHeaderLen] ??= Object.freeze({
      flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
      gsoType: VIRTIO_NET_HDR_GSO_NONE,
      hdrLen: ipHeaderLen + tcpHeaderLen,
      gsoSize: 0,
      csumStart: ipHeaderLen,
      csumOffset: TCP_CSUM_OFFSET,
    }));
  }
  return {
    flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
    gsoType: gso ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_NONE,
    hdrLen: ipHeaderLen + tcpHeaderLen,
    gsoSize: gso ? mss : 0,
    csumStart: ipHeaderLen,
    csumOffset: TCP_CSUM_OFFSET,
  };
}

/** tcpTxHeader's shared headers for non-GSO segments behind a 20-byte IPv4 header, by TCP header length. */
const PLAIN_TX_HEADERS: Array<VirtioNetHdr | undefined> = [];

/** The value a partial TCP checksum field holds: the pseudo-header sum, folded, not complemented. */
export function partialTcpChecksum(src: number, dst: number, tcpLength: number): number {
  return pseudoHeaderSum(src, dst, PROTO_TCP, tcpLength);
}

/**
 * What the kernel makes of a packet we write with header `h` (software GSO, Linux's tcp_gso_segment,
 * and checksum completion): whole packets with valid checksums, as they appear on a wire. A packet
 * without GSO only has its checksum completed (a copy: the original is left alone). The caller built
 * `h` (tcpTxHeader) or checked it (checkRx).
 */
export function segment(packet: Uint8Array, h: VirtioNetHdr): Uint8Array[] {
  const gso = h.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
  if (gso === VIRTIO_NET_HDR_GSO_NONE) {
    const copy = packet.slice();
    if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) completeChecksum(copy, h.csumStart, h.csumOffset);
    return [copy];
  }
  const ihl = (packet[0]! & 0x0f) * 4;
  const thl = (packet[ihl + 12]! >>> 4) * 4;
  const hlen = ihl + thl;
  const total = Math.min(packet.length, (packet[2]! << 8) | packet[3]!);
  const payload = total - hlen;
  const mss = h.gsoSize;
  if (mss <= 0 || payload < 0 || thl < 20) return [packet.slice()]; // not a super-segment after all
  const src = readIpv4(packet, 12);
  const dst = readIpv4(packet, 16);
  const id0 = (packet[4]! << 8) | packet[5]!;
  const seq0 = ((packet[ihl + 4]! << 24) | (packet[ihl + 5]! << 16) | (packet[ihl + 6]! << 8) | packet[ihl + 7]!) >>> 0;
  const flags = packet[ihl + 13]!;
  const out: Uint8Array[] = [];
  const n = Math.max(1, Math.ceil(payload / mss));
  for (let i = 0; i < n; i++) {
    const off = i * mss;
    const len = Math.min(mss, payload - off);
    const seg = new Uint8Array(hlen + len);
    seg.set(packet.subarray(0, hlen), 0);
    seg.set(packet.subarray(hlen + off, hlen + off + len), hlen);
    const tot = hlen + len;
    seg[2] = tot >>> 8;
    seg[3] = tot & 0xff;
    const id = (id0 + i) & 0xffff; // the kernel increments the ID per segment (no FIXEDID)
    seg[4] = id >>> 8;
    seg[5] = id & 0xff;
    seg[10] = seg[11] = 0;
    const ipsum = checksumFinish(checksumPartial(seg, 0, ihl));
    seg[10] = ipsum >>> 8;
    seg[11] = ipsum & 0xff;
    const seq = (seq0 + off) >>> 0;
    seg[ihl + 4] = seq >>> 24;
    seg[ihl + 5] = seq >>> 16;
    seg[ihl + 6] = seq >>> 8;
    seg[ihl + 7] = seq;
    let f = flags;
    if (i < n - 1) f &= ~0x09; // FIN and PSH only on the last segment
    if (i > 0) f &= ~0x80; // CWR only on the first
    seg[ihl + 13] = f;
    seg[ihl + 16] = seg[ihl + 17] = 0;
    const sum = checksumFinish(checksumPartial(seg, ihl, tot, pseudoHeaderSum(src, dst, PROTO_TCP, tot - ihl)));
    seg[ihl + 16] = sum >>> 8;
    seg[ihl + 17] = sum & 0xff;
    out.push(seg);
  }
  return out;
}
