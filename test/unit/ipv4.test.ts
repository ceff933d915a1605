import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { internetChecksum } from '../../src/ip/checksum.js';
import { IPV4_HEADER_LEN, parseIpv4, PROTO_TCP, PROTO_UDP, writeIpv4Header } from '../../src/ip/ipv4.js';
import { seededRandom } from '../../src/runtime/random.js';
import { hex, ok } from '../helpers/unit.js';

const A = parseAddr('10.0.0.1')!;
const B = parseAddr('10.0.0.2')!;

/** A valid packet with `dataLen` bytes of data (0, 1, 2, ...). */
function packet(dataLen: number, fields: Partial<Parameters<typeof writeIpv4Header>[2]> = {}): Uint8Array {
  const buf = new Uint8Array(IPV4_HEADER_LEN + dataLen);
  for (let i = 0; i < dataLen; i++) buf[IPV4_HEADER_LEN + i] = i & 0xff;
  writeIpv4Header(buf, 0, { totalLength: buf.length, id: 0x1234, protocol: PROTO_TCP, src: A, dst: B, ...fields });
  return buf;
}

/** Recompute the header checksum after editing header bytes by hand. */
function reseal(buf: Uint8Array): Uint8Array {
  const ihl = (buf[0]! & 0x0f) * 4;
  buf[10] = 0;
  buf[11] = 0;
  const sum = internetChecksum(buf, 0, Math.min(ihl, buf.length));
  buf[10] = sum >>> 8;
  buf[11] = sum & 0xff;
  return buf;
}

describe('IPv4 codec', () => {
  it('round-trips every field, with a payload view', () => {
    const buf = packet(100, { tos: 0x10, df: false, mf: true, fragmentOffset: 1480, ttl: 3, id: 0xbeef, protocol: PROTO_UDP });
    const p = ok(parseIpv4(buf));
    expect(p.header).toEqual({
      ihl: 20,
      tos: 0x10,
      totalLength: 120,
      id: 0xbeef,
      df: false,
      mf: true,
      fragmentOffset: 1480,
      ttl: 3,
      protocol: PROTO_UDP,
      checksum: (buf[10]! << 8) | buf[11]!,
      src: A,
      dst: B,
    });
    expect(p.payload.length).toBe(100);
    expect(p.payload.buffer).toBe(buf.buffer); // a view, not a copy
    expect(p.payload.byteOffset).toBe(20);
    expect(p.payload[99]).toBe(99);
  });

  it('defaults: TTL 64, DF off, TOS 0, and a header checksum that verifies', () => {
    const buf = packet(0);
    expect(buf[8]).toBe(64);
    expect(internetChecksum(buf, 0, 20)).toBe(0);
    const h = ok(parseIpv4(buf)).header;
    expect([h.df, h.mf, h.fragmentOffset, h.tos, h.ttl]).toEqual([false, false, 0, 0, 64]);
    expect(ok(parseIpv4(packet(0, { df: true }))).header.df).toBe(true);
  });

  it('parses a real captured header', () => {
    const buf = new Uint8Array(0x73);
    buf.set(hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7'));
    const h = ok(parseIpv4(buf)).header;
    expect(h.src).toBe(parseAddr('192.168.0.1'));
    expect(h.dst).toBe(parseAddr('192.168.0.199'));
    expect([h.totalLength, h.df, h.ttl, h.protocol, h.checksum]).toEqual([115, true, 64, PROTO_UDP, 0xb861]);
  });

  it('skips options and trims link padding after Total Length', () => {
    const buf = new Uint8Array(24 + 10 + 6); // 24-byte header, 10 data bytes, 6 bytes of padding
    buf.set(packet(0).subarray(0, 20));
    buf[0] = 0x46; // IHL 6
    buf[2] = 0;
    buf[3] = 34; // total length
    buf.set([1, 1, 1, 0], 20); // NOP NOP NOP EOL
    buf.fill(0xaa, 24, 34);
    const p = ok(parseIpv4(reseal(buf)));
    expect(p.header.ihl).toBe(24);
    expect(Array.from(p.payload)).toEqual(new Array(10).fill(0xaa));
  });

  describe('rejects hostile headers with the right reason', () => {
    const cases: Array<[string, () => Uint8Array, string]> = [
      ['empty buffer', () => new Uint8Array(0), 'truncated'],
      ['19 bytes', () => packet(0).subarray(0, 19), 'truncated'],
      ['version 6', () => reseal(Object.assign(packet(8), { 0: 0x65 })), 'bad-version'],
      ['version 0', () => reseal(Object.assign(packet(8), { 0: 0x05 })), 'bad-version'],
      ['IHL 4', () => reseal(Object.assign(packet(8), { 0: 0x44 })), 'bad-ihl'],
      ['IHL 0', () => reseal(Object.assign(packet(8), { 0: 0x40 })), 'bad-ihl'],
      ['IHL 15 beyond a 28-byte buffer', () => Object.assign(packet(8), { 0: 0x4f }), 'truncated'],
      ['total length beyond the buffer', () => reseal(Object.assign(packet(8), { 3: 29 })), 'truncated'],
      ['total length smaller than the header', () => reseal(Object.assign(packet(8), { 3: 19 })), 'bad-total-length'],
      ['total length 0', () => reseal(Object.assign(packet(8), { 2: 0, 3: 0 })), 'bad-total-length'],
      ['total length < IHL with options', () => reseal(Object.assign(packet(8), { 0: 0x46, 3: 22 })), 'bad-total-length'],
      ['bad checksum', () => Object.assign(packet(8), { 11: packet(8)[11]! ^ 1 }), 'bad-checksum'],
      ['a flipped address bit', () => Object.assign(packet(8), { 15: 3 }), 'bad-checksum'],
    ];
    for (const [name, make, reason] of cases) {
      it(name, () => {
        expect(parseIpv4(make())).toEqual({ error: reason });
      });
    }
  });

  it('never throws on random or mutated input, and every accepted packet is consistent', () => {
    const rnd = seededRandom(791);
    const valid = packet(40);
    let accepted = 0;
    for (let n = 0; n < 20_000; n++) {
      let buf: Uint8Array;
      if (n % 2 === 0) {
        buf = new Uint8Array(Math.floor(rnd() * 80));
        for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
        if (buf.length > 0 && rnd() < 0.5) buf[0] = 0x45;
      } else {
        buf = valid.slice(0, Math.floor(rnd() * (valid.length + 1)));
        const flips = 1 + Math.floor(rnd() * 3);
        for (let f = 0; f < flips && buf.length > 0; f++) buf[Math.floor(rnd() * Math.min(buf.length, 20))] = Math.floor(rnd() * 256);
        if (rnd() < 0.7) reseal(buf);
      }
      const r = parseIpv4(buf);
      if ('error' in r) continue;
      accepted++;
      expect(r.header.ihl).toBeGreaterThanOrEqual(20);
      expect(r.header.totalLength).toBeLessThanOrEqual(buf.length);
      expect(r.payload.length).toBe(r.header.totalLength - r.header.ihl);
      expect(internetChecksum(buf, 0, r.header.ihl)).toBe(0);
    }
    expect(accepted).toBeGreaterThan(100); // the mutations do produce valid packets too
  });
});
