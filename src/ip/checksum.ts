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
  // Long runs at an even address: sum 32-bit words through a Uint32Array view (about twice as
  // fast as byte loads). The words are read in the machine's byte order; RFC 1071 §2(B): the
  // sum is byte-order independent, so a little-endian sum only needs its two bytes swapped.
  if (end - i >= 128 && ((buf.byteOffset + i) & 1) === 0) {
    let le = 0;
    if (((buf.byteOffset + i) & 2) !== 0) {
      le += buf[i]! | (buf[i + 1]! << 8);
      i += 2;
    }
    const words = (end - i) >>> 2;
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    const w4 = words & ~3;
    let lo = 0;
    let hi = 0;
    let k = 0;
    for (; k < w4; k += 4) {
      const a = u32[k]!;
      const b = u32[k + 1]!;
      const c = u32[k + 2]!;
      const d = u32[k + 3]!;
      lo += (a & 0xffff) + (b & 0xffff) + (c & 0xffff) + (d & 0xffff);
      hi += (a >>> 16) + (b >>> 16) + (c >>> 16) + (d >>> 16);
    }
    for (; k < words; k++) {
      const a = u32[k]!;
      lo += a & 0xffff;
      hi += a >>> 16;
    }
    i += words * 4;
    const folded = fold(le + lo + hi);
    sum += LITTLE_ENDIAN ? ((folded & 0xff) << 8) | (folded >>> 8) : folded;
  }
  const end8 = i + ((end - i) & ~7);
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

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

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
