import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { checksumFinish, checksumPartial, internetChecksum, pseudoHeaderSum } from '../../src/ip/checksum.js';
import { seededRandom } from '../../src/runtime/random.js';
import { hex } from '../helpers/unit.js';

/** Reference: add one 16-bit word at a time with an immediate end-around carry. */
function naiveChecksum(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const word = (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    sum += word;
    if (sum > 0xffff) sum -= 0xffff; // end-around carry
  }
  return ~sum & 0xffff;
}


describe('internet checksum (RFC 1071)', () => {
  it('matches the worked example of RFC 1071 section 3', () => {
    // Bytes 00 01 f2 03 f4 f5 f6 f7: the ones'-complement sum is ddf2.
    const buf = hex('0001 f203 f4f5 f6f7');
    expect(checksumPartial(buf, 0, buf.length)).toBe(0xddf2);
    expect(internetChecksum(buf)).toBe(0x220d);
  });

  it('computes the checksum of a real captured IPv4 header, and verifies it to zero', () => {
    // UDP from 192.168.0.1 to 192.168.0.199, total length 115, DF, TTL 64: checksum b861.
    const header = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
    expect(internetChecksum(header)).toBe(0);
    header[10] = 0;
    header[11] = 0;
    expect(internetChecksum(header)).toBe(0xb861);
  });

  it('pads an odd final byte with zero on the right', () => {
    expect(checksumPartial(Uint8Array.of(0x01), 0, 1)).toBe(0x0100);
    expect(checksumPartial(Uint8Array.of(0x01, 0x02, 0x03), 0, 3)).toBe(0x0402);
    expect(internetChecksum(Uint8Array.of(0xab, 0xcd, 0xef))).toBe(~(0xabcd + 0xef00 - 0xffff) & 0xffff);
  });

  it('returns 0xffff for empty input and 0 over 64 KiB of ones (carries never lost)', () => {
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
    const ones = new Uint8Array(65536).fill(0xff);
    expect(checksumPartial(ones, 0, ones.length)).toBe(0xffff);
    expect(internetChecksum(ones)).toBe(0);
    // 65535 bytes: odd length with a large accumulator
    expect(internetChecksum(ones, 0, 65535)).toBe(naiveChecksum(Array.from(ones.subarray(0, 65535))));
  });

  it('equals the naive reference on random buffers, ranges and lengths (seeded)', () => {
    const rnd = seededRandom(1071);
    for (let n = 0; n < 500; n++) {
      const len = Math.floor(rnd() * 3000);
      const buf = new Uint8Array(len);
      for (let i = 0; i < len; i++) buf[i] = Math.floor(rnd() * 256);
      const start = Math.floor(rnd() * (len + 1));
      const end = start + Math.floor(rnd() * (len - start + 1));
      const expected = naiveChecksum(Array.from(buf.subarray(start, end)));
      expect(internetChecksum(buf, start, end)).toBe(expected);
      // a subarray view at an arbitrary byteOffset gives the same answer
      expect(internetChecksum(buf.subarray(start, end))).toBe(expected);
    }
  });

  it('chains partial sums over even-length pieces', () => {
    const rnd = seededRandom(7);
    for (let n = 0; n < 200; n++) {
      const len = 2 + Math.floor(rnd() * 1500);
      const buf = new Uint8Array(len);
      for (let i = 0; i < len; i++) buf[i] = Math.floor(rnd() * 256);
      const cut = 2 * Math.floor((rnd() * len) / 2);
      const chained = checksumFinish(checksumPartial(buf, cut, len, checksumPartial(buf, 0, cut)));
      expect(chained).toBe(internetChecksum(buf));
      const partial = checksumPartial(buf, 0, cut);
      expect(partial).toBeGreaterThanOrEqual(0);
      expect(partial).toBeLessThanOrEqual(0xffff);
    }
  });

  it('pseudoHeaderSum equals summing the 12-byte pseudo-header', () => {
    const src = parseAddr('10.0.0.1')!;
    const dst = parseAddr('255.254.253.252')!;
    const pseudo = Uint8Array.of(10, 0, 0, 1, 255, 254, 253, 252, 0, 17, 0x05, 0xdc);
    expect(pseudoHeaderSum(src, dst, 17, 1500)).toBe(checksumPartial(pseudo, 0, 12));
    const rnd = seededRandom(3);
    for (let n = 0; n < 100; n++) {
      const s = Math.floor(rnd() * 2 ** 32);
      const d = Math.floor(rnd() * 2 ** 32);
      const len = Math.floor(rnd() * 65536);
      const p = new Uint8Array(12);
      new DataView(p.buffer).setUint32(0, s);
      new DataView(p.buffer).setUint32(4, d);
      p[9] = 6;
      new DataView(p.buffer).setUint16(10, len);
      expect(pseudoHeaderSum(s, d, 6, len)).toBe(checksumPartial(p, 0, 12));
    }
  });
});
