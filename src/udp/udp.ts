/**
 * UDP header codec (RFC 768).
 *
 *     0      7 8     15 16    23 24    31
 *    +--------+--------+--------+--------+
 *    |     Source      |   Destination   |
 *    |      Port       |      Port       |
 *    +--------+--------+--------+--------+
 *    |     Length      |    Checksum     |
 *    +--------+--------+--------+--------+
 *    |          data octets ...
 *
 * Length counts header and data. The checksum covers a pseudo-header (source and
 * destination address, protocol 17, UDP length), the header and the data. A checksum
 * field of zero means the sender computed none; a computed checksum of zero is therefore
 * sent as all ones (0xffff).
 */
import type { Ipv4Addr } from '../ip/addr.js';
import { checksumFinish, checksumPartial, pseudoHeaderSum } from '../ip/checksum.js';
import { PROTO_UDP } from '../ip/ipv4.js';

export const UDP_HEADER_LEN = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  /** Header + data, in bytes. */
  length: number;
  checksum: number;
  /** The data: a view, trimmed to `length`. */
  payload: Uint8Array;
}

export type UdpDropReason = 'truncated' | 'bad-length' | 'bad-checksum';

/**
 * Validate and decode a UDP datagram (the IPv4 payload). `src`/`dst` are the IP addresses,
 * needed for the pseudo-header checksum. Bytes after `length` are ignored. Never throws.
 */
export function parseUdp(buf: Uint8Array, src: Ipv4Addr, dst: Ipv4Addr): UdpDatagram | { error: UdpDropReason } {
  if (buf.length < UDP_HEADER_LEN) return { error: 'truncated' };
  const length = (buf[4]! << 8) | buf[5]!;
  if (length < UDP_HEADER_LEN) return { error: 'bad-length' };
  if (length > buf.length) return { error: 'truncated' };
  const checksum = (buf[6]! << 8) | buf[7]!;
  if (checksum !== 0) {
    const sum = checksumPartial(buf, 0, length, pseudoHeaderSum(src, dst, PROTO_UDP, length));
    if (checksumFinish(sum) !== 0) return { error: 'bad-checksum' };
  }
  return {
    srcPort: (buf[0]! << 8) | buf[1]!,
    dstPort: (buf[2]! << 8) | buf[3]!,
    length,
    checksum,
    payload: buf.subarray(UDP_HEADER_LEN, length),
  };
}

export interface UdpHeaderFields {
  srcPort: number;
  dstPort: number;
  /** Data bytes, which must already sit right after the header. */
  payloadLength: number;
  /** IP addresses for the pseudo-header. */
  src: Ipv4Addr;
  dst: Ipv4Addr;
}

/** Write the 8-byte header at buf[off] and the checksum over it and the data that follows. */
export function writeUdp(buf: Uint8Array, off: number, f: UdpHeaderFields): void {
  const length = UDP_HEADER_LEN + f.payloadLength;
  buf[off] = f.srcPort >>> 8;
  buf[off + 1] = f.srcPort & 0xff;
  buf[off + 2] = f.dstPort >>> 8;
  buf[off + 3] = f.dstPort & 0xff;
  buf[off + 4] = length >>> 8;
  buf[off + 5] = length & 0xff;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  const sum = checksumFinish(checksumPartial(buf, off, off + length, pseudoHeaderSum(f.src, f.dst, PROTO_UDP, length)));
  const field = sum === 0 ? 0xffff : sum; // zero means "no checksum" (RFC 768)
  buf[off + 6] = field >>> 8;
  buf[off + 7] = field & 0xff;
}
