/**
 * The Internet checksum (RFC 1071): the 16-bit ones'-complement of the ones'-complement
 * sum of all 16-bit big-endian words. IPv4, ICMP, UDP and TCP all use it.
 *
 * Two properties make it cheap (RFC 1071 section 2):
 *  - Deferred carries: add the words into a wide accumulator and fold the carries back
 *    into the low 16 bits once at the end, instead of after every addition.
 *  - Incremental: partial sums of consecutive ranges can be added together, so a
 *    pseudo-header, a transport header and a payload can be summed separately.
 *
 * This runs over every byte we send and receive, so the inner loop reads 8 bytes per
 * iteration and never allocates. A JS number holds integers up to 2^53 exactly, so even
 * a 64 KiB datagram (at most 32768 * 0xffff < 2^31) cannot lose a carry.
 */
import type { Ipv4Addr } from './addr.js';

/**
 * Ones'-complement sum of buf[start, end) taken as big-endian 16-bit words, plus
 * `initial`, folded to 16 bits (0..0xffff) but NOT complemented.
 *
 * Chaining: `checksumPartial(b, m, n, checksumPartial(a, 0, k))` equals the sum over the
 * concatenation as long as every range except the last has EVEN length (an odd final
 * byte is padded with a zero low byte, RFC 1071 section 4.1).
 */
export function checksumPartial(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  const end8 = start + ((end - start) & ~7);
  for (; i < end8; i += 8) {
    sum +=
      ((buf[i]! << 8) | buf[i + 1]!) +
      ((buf[i + 2]! << 8) | buf[i + 3]!) +
      ((buf[i + 4]! << 8) | buf[i + 5]!) +
      ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8; // odd length: pad the last byte on the right
  return fold(sum);
}

/** Fold carries into the low 16 bits (end-around carry). Result is 0..0xffff. */
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Fold and complement a sum: the value to store in a checksum field. */
export function checksumFinish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/**
 * Checksum of buf[start, end). Computing it over a header that already contains its
 * checksum field gives 0 when the header is intact (RFC 1071 section 1).
 */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length): number {
  return checksumFinish(checksumPartial(buf, start, end));
}

/**
 * Sum of the TCP/UDP pseudo-header (RFC 9293 section 3.1, RFC 768): source address,
 * destination address, zero, protocol, and the transport length. Pass it as `initial`
 * to checksumPartial over the transport header and data.
 */
export function pseudoHeaderSum(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, length: number): number {
  return fold((src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + (protocol & 0xff) + (length & 0xffff));
}
