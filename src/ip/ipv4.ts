/**
 * IPv4 header codec (RFC 791 section 3.1).
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |Version|  IHL  |Type of Service|          Total Length         |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |         Identification        |Flags|      Fragment Offset    |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  Time to Live |    Protocol   |         Header Checksum       |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                       Source Address                          |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                    Destination Address                        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                    Options                    |    Padding    |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Flags: bit 0 reserved (must be zero), bit 1 DF (don't fragment), bit 2 MF (more
 * fragments). The fragment offset counts 8-byte units; this codec exposes it in BYTES.
 */
import { readIpv4, writeIpv4 } from './addr.js';
import type { Ipv4Addr } from './addr.js';
import { internetChecksum } from './checksum.js';

export const IPV4_HEADER_LEN = 20;
/** RFC 791: every host must accept 576-byte datagrams; every link carries at least 68. */
export const MIN_MTU = 68;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export interface Ipv4Header {
  /** Header length in bytes (IHL * 4, so 20..60). */
  ihl: number;
  tos: number;
  /** Whole datagram (header + data) in bytes. */
  totalLength: number;
  id: number;
  df: boolean;
  mf: boolean;
  /** Offset of this fragment's data in the original datagram, in BYTES (a multiple of 8). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  src: Ipv4Addr;
  dst: Ipv4Addr;
}

export interface Ipv4Packet {
  header: Ipv4Header;
  /** The data after the header (options skipped): a view, trimmed to totalLength. */
  payload: Uint8Array;
}

export type Ipv4DropReason =
  /** Shorter than a minimal header, than its IHL, or than its Total Length. */
  | 'truncated'
  | 'bad-version'
  /** IHL below 5 words (RFC 791: minimum header is 20 bytes). */
  | 'bad-ihl'
  /** Total Length smaller than the header itself. */
  | 'bad-total-length'
  | 'bad-checksum';

/**
 * Validate and decode one IPv4 packet. Never throws. Bytes after Total Length (link
 * padding) are ignored; options are tolerated and skipped.
 */
export function parseIpv4(buf: Uint8Array): Ipv4Packet | { error: Ipv4DropReason } {
  if (buf.length < IPV4_HEADER_LEN) return { error: 'truncated' };
  const version = buf[0]! >>> 4;
  if (version !== 4) return { error: 'bad-version' };
  const ihl = (buf[0]! & 0x0f) * 4;
  if (ihl < IPV4_HEADER_LEN) return { error: 'bad-ihl' };
  if (ihl > buf.length) return { error: 'truncated' };
  // Summing the header including its checksum field yields 0 when intact (RFC 1071).
  if (internetChecksum(buf, 0, ihl) !== 0) return { error: 'bad-checksum' };
  const totalLength = (buf[2]! << 8) | buf[3]!;
  if (totalLength < ihl) return { error: 'bad-total-length' };
  // Linux counts this case as a truncated packet (InTruncatedPkts): the link delivered
  // fewer bytes than the header claims.
  if (totalLength > buf.length) return { error: 'truncated' };
  const flagsOffset = (buf[6]! << 8) | buf[7]!;
  const header: Ipv4Header = {
    ihl,
    tos: buf[1]!,
    totalLength,
    id: (buf[4]! << 8) | buf[5]!,
    df: (flagsOffset & FLAG_DF) !== 0,
    mf: (flagsOffset & FLAG_MF) !== 0,
    fragmentOffset: (flagsOffset & OFFSET_MASK) * 8,
    ttl: buf[8]!,
    protocol: buf[9]!,
    checksum: (buf[10]! << 8) | buf[11]!,
    src: readIpv4(buf, 12),
    dst: readIpv4(buf, 16),
  };
  return { header, payload: buf.subarray(ihl, totalLength) };
}

/** IP option types (RFC 791 §3.1): End of Option List, No Operation, and the two source routes. */
const OPT_EOL = 0;
const OPT_NOP = 1;
export const OPT_LSRR = 131;
export const OPT_SSRR = 137;

/**
 * Whether the options of the header at buf[0..ihl) carry a Loose or Strict Source and Record
 * Route (RFC 791 §3.1). A host that honoured one would route its reply along a path the sender
 * chose, which is how spoofed sources get answers back; Linux drops such packets unless
 * accept_source_route is set (it is not by default; RFC 1122 §3.3.5 leaves it to the host).
 * The walk stops at End of Option List or at an option whose length does not fit.
 */
export function hasSourceRoute(buf: Uint8Array, ihl: number): boolean {
  let i = IPV4_HEADER_LEN;
  const end = Math.min(ihl, buf.length);
  while (i < end) {
    const type = buf[i]!;
    if (type === OPT_EOL) return false;
    if (type === OPT_NOP) {
      i++;
      continue;
    }
    if (type === OPT_LSRR || type === OPT_SSRR) return true;
    const len = i + 1 < end ? buf[i + 1]! : 0;
    if (len < 2) return false;
    i += len;
  }
  return false;
}

export interface Ipv4HeaderFields {
  totalLength: number;
  id: number;
  df?: boolean;
  mf?: boolean;
  /** In bytes; must be a multiple of 8. */
  fragmentOffset?: number;
  /** Default 64 (RFC 1700 recommended default TTL, Linux's default). */
  ttl?: number;
  protocol: number;
  src: Ipv4Addr;
  dst: Ipv4Addr;
  tos?: number;
}

/** Write a 20-byte header (no options) at buf[off] and fill in its checksum. */
export function writeIpv4Header(buf: Uint8Array, off: number, f: Ipv4HeaderFields): void {
  const flagsOffset =
    (f.df ? FLAG_DF : 0) | (f.mf ? FLAG_MF : 0) | (((f.fragmentOffset ?? 0) >>> 3) & OFFSET_MASK);
  buf[off] = 0x45; // version 4, IHL 5
  buf[off + 1] = f.tos ?? 0;
  buf[off + 2] = f.totalLength >>> 8;
  buf[off + 3] = f.totalLength & 0xff;
  buf[off + 4] = (f.id >>> 8) & 0xff;
  buf[off + 5] = f.id & 0xff;
  buf[off + 6] = flagsOffset >>> 8;
  buf[off + 7] = flagsOffset & 0xff;
  buf[off + 8] = f.ttl ?? 64;
  buf[off + 9] = f.protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  writeIpv4(buf, off + 12, f.src);
  writeIpv4(buf, off + 16, f.dst);
  const sum = internetChecksum(buf, off, off + IPV4_HEADER_LEN);
  buf[off + 10] = sum >>> 8;
  buf[off + 11] = sum & 0xff;
}
