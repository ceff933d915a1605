import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import type { Ipv4Addr } from '../../src/ip/addr.js';
import { internetChecksum } from '../../src/ip/checksum.js';
import {
  echoIdentifier,
  echoSequence,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REQUEST,
  parseIcmp,
  UNREACH_PORT,
  writeIcmp,
} from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, parseIpv4, PROTO_ICMP, PROTO_UDP, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { IpLayer } from '../../src/ip/layer.js';
import { ok } from '../helpers/unit.js';

const US = parseAddr('10.0.0.2')!;
const PEER = parseAddr('10.0.0.1')!;

function icmpBytes(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(8 + data.length);
  buf.set(data, 8);
  writeIcmp(buf, 0, { type, code, restOfHeader: rest }, data.length);
  return buf;
}

function header(fields: Partial<Ipv4Header> = {}): Ipv4Header {
  return {
    ihl: 20, tos: 0, totalLength: 48, id: 0x4242, df: true, mf: false, fragmentOffset: 0,
    ttl: 64, protocol: PROTO_UDP, checksum: 0, src: PEER, dst: US, ...fields,
  };
}

function layer(icmpErrorsPerSecond?: number) {
  const out: Uint8Array[] = [];
  const ip = new IpLayer({ addr: US, mtu: 1500, transmit: (p) => out.push(p), ...(icmpErrorsPerSecond ? { icmpErrorsPerSecond } : {}) });
  return { ip, out };
}

function ipPacket(protocol: number, payload: Uint8Array, src: Ipv4Addr = PEER, dst: Ipv4Addr = US): Uint8Array {
  const buf = new Uint8Array(IPV4_HEADER_LEN + payload.length);
  buf.set(payload, IPV4_HEADER_LEN);
  writeIpv4Header(buf, 0, { totalLength: buf.length, id: 1, protocol, src, dst });
  return buf;
}

const UDP_BYTES = Uint8Array.of(0x30, 0x39, 0x00, 0x35, 0x00, 0x1c, 0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20);

describe('ICMP codec', () => {
  it('round-trips an echo request', () => {
    const data = Uint8Array.of(1, 2, 3, 4, 5);
    const buf = icmpBytes(ICMP_ECHO_REQUEST, 0, (0x1234 << 16) | 0x0007, data);
    expect(internetChecksum(buf)).toBe(0);
    const m = ok(parseIcmp(buf));
    expect([m.type, m.code, echoIdentifier(m), echoSequence(m)]).toEqual([8, 0, 0x1234, 7]);
    expect(m.checksum).toBe((buf[2]! << 8) | buf[3]!);
    expect(Array.from(m.data)).toEqual([1, 2, 3, 4, 5]);
    expect(m.data.buffer).toBe(buf.buffer);
  });

  it('rejects truncated messages and bad checksums', () => {
    expect(parseIcmp(new Uint8Array(7))).toEqual({ error: 'truncated' });
    const buf = icmpBytes(ICMP_ECHO_REQUEST, 0, 1, Uint8Array.of(9, 9, 9));
    buf[10]! ^= 0x40;
    expect(parseIcmp(buf)).toEqual({ error: 'bad-checksum' });
  });
});

describe('ICMP errors (RFC 792, RFC 1122 3.2.2)', () => {
  it('Destination Unreachable carries the original header and first 8 data bytes', () => {
    const { ip, out } = layer();
    const original = header({ totalLength: 20 + UDP_BYTES.length, ttl: 17, tos: 0x08 });
    ip.sendUnreachable(UNREACH_PORT, original, UDP_BYTES, 0);
    expect(out).toHaveLength(1);
    const p = ok(parseIpv4(out[0]!));
    expect([p.header.src, p.header.dst, p.header.protocol, p.header.ttl]).toEqual([US, PEER, PROTO_ICMP, 64]);
    const m = ok(parseIcmp(p.payload)); // checksum verified
    expect([m.type, m.code, m.restOfHeader]).toEqual([ICMP_DEST_UNREACHABLE, UNREACH_PORT, 0]);
    expect(m.data.length).toBe(28);
    // The quoted header: a valid IPv4 header describing the original datagram.
    const q = m.data.subarray(0, 20);
    expect(internetChecksum(q)).toBe(0);
    expect(q[0]).toBe(0x45);
    expect(q[1]).toBe(0x08);
    expect((q[2]! << 8) | q[3]!).toBe(original.totalLength);
    expect((q[4]! << 8) | q[5]!).toBe(0x4242);
    expect(q[6]! & 0x40).toBe(0x40); // DF
    expect([q[8], q[9]]).toEqual([17, PROTO_UDP]);
    expect(Array.from(q.subarray(12, 20))).toEqual([10, 0, 0, 1, 10, 0, 0, 2]);
    expect(Array.from(m.data.subarray(20))).toEqual(Array.from(UDP_BYTES.subarray(0, 8)));
    expect(ip.stats()['icmp.unreachable.out']).toBe(1);
  });

  it('quotes fewer bytes when the datagram had fewer than 8', () => {
    const { ip, out } = layer();
    ip.sendUnreachable(2, header({ protocol: 99, totalLength: 23 }), Uint8Array.of(7, 8, 9), 0);
    const m = ok(parseIcmp(ok(parseIpv4(out[0]!)).payload));
    expect(Array.from(m.data.subarray(20))).toEqual([7, 8, 9]);
  });

  const forbidden: Array<[string, Ipv4Header, Uint8Array]> = [
    ['an ICMP error (Destination Unreachable)', header({ protocol: PROTO_ICMP }), icmpBytes(3, 1, 0, new Uint8Array(28))],
    ['an ICMP error (Time Exceeded)', header({ protocol: PROTO_ICMP }), icmpBytes(11, 0, 0, new Uint8Array(28))],
    ['an ICMP message of unknown type', header({ protocol: PROTO_ICMP }), icmpBytes(200, 0, 0, new Uint8Array(4))],
    ['an empty ICMP payload', header({ protocol: PROTO_ICMP }), new Uint8Array(0)],
    ['a datagram to the limited broadcast address', header({ dst: 0xffffffff }), UDP_BYTES],
    ['a datagram to a multicast group', header({ dst: parseAddr('224.0.0.251')! }), UDP_BYTES],
    ['a non-first fragment', header({ mf: true, fragmentOffset: 1480 }), UDP_BYTES],
    ['a last non-first fragment', header({ mf: false, fragmentOffset: 8 }), UDP_BYTES],
    ['source 0.0.0.0', header({ src: 0 }), UDP_BYTES],
    ['a loopback source', header({ src: parseAddr('127.0.0.1')! }), UDP_BYTES],
    ['a multicast source', header({ src: parseAddr('239.1.2.3')! }), UDP_BYTES],
    ['a class E / broadcast source', header({ src: 0xffffffff }), UDP_BYTES],
  ];
  for (const [name, h, payload] of forbidden) {
    it(`is never sent about ${name}`, () => {
      const { ip, out } = layer();
      ip.sendUnreachable(UNREACH_PORT, h, payload, 0);
      expect(out).toHaveLength(0);
      expect(ip.stats()['icmp.error.suppressed']).toBe(1);
    });
  }

  it('may be sent about an ICMP query and about a first fragment', () => {
    const { ip, out } = layer();
    ip.sendUnreachable(2, header({ protocol: PROTO_ICMP }), icmpBytes(ICMP_ECHO_REQUEST, 0, 0, new Uint8Array(4)), 0);
    ip.sendUnreachable(3, header({ mf: true, fragmentOffset: 0 }), UDP_BYTES, 0);
    expect(out).toHaveLength(2);
  });

  it('is rate-limited by a token bucket (burst 50, then the configured rate)', () => {
    const { ip, out } = layer(100);
    const send = (n: number, now: number) => {
      for (let i = 0; i < n; i++) ip.sendUnreachable(UNREACH_PORT, header(), UDP_BYTES, now);
    };
    send(200, 1000);
    expect(out).toHaveLength(50); // the burst
    expect(ip.stats()['icmp.error.ratelimited']).toBe(150);
    send(20, 1100); // 100 ms at 100/s refills 10 tokens
    expect(out).toHaveLength(60);
    send(5, 1105); // 5 ms: half a token
    expect(out).toHaveLength(60);
    send(5, 1110); // now a whole one
    expect(out).toHaveLength(61);
    send(200, 60_000); // a long quiet time refills only up to the burst
    expect(out).toHaveLength(111);
  });

  it('does not rate-limit echo replies', () => {
    const { ip, out } = layer(1);
    for (let i = 0; i < 100; i++) {
      ip.receive(ipPacket(PROTO_ICMP, icmpBytes(ICMP_ECHO_REQUEST, 0, i, new Uint8Array(8))), 0);
    }
    expect(out).toHaveLength(100);
    expect(ip.stats()['icmp.echo']).toBe(100);
  });
});

describe('ICMP receive', () => {
  it('counts replies and errors by type and answers none of them', () => {
    const { ip, out } = layer();
    const quoted = new Uint8Array(28);
    ip.receive(ipPacket(PROTO_ICMP, icmpBytes(0, 0, 0x00010001, new Uint8Array(16))), 0);
    ip.receive(ipPacket(PROTO_ICMP, icmpBytes(3, 3, 0, quoted)), 0);
    ip.receive(ipPacket(PROTO_ICMP, icmpBytes(11, 0, 0, quoted)), 0);
    ip.receive(ipPacket(PROTO_ICMP, icmpBytes(13, 0, 0, new Uint8Array(12))), 0); // timestamp: not implemented
    const s = ip.stats();
    expect(s['icmp.in']).toBe(4);
    expect(s['icmp.echo-reply.in']).toBe(1);
    expect(s['icmp.unreachable.in']).toBe(1);
    expect(s['icmp.time-exceeded.in']).toBe(1);
    expect(s['icmp.other.in']).toBe(1);
    expect(out).toHaveLength(0);
  });

  it('drops truncated messages and bad checksums, counted', () => {
    const { ip, out } = layer();
    ip.receive(ipPacket(PROTO_ICMP, Uint8Array.of(8, 0, 0, 0)), 0);
    const bad = icmpBytes(ICMP_ECHO_REQUEST, 0, 1, new Uint8Array(8));
    bad[9]! ^= 1;
    ip.receive(ipPacket(PROTO_ICMP, bad), 0);
    expect(out).toHaveLength(0);
    expect(ip.stats()['icmp.drop.truncated']).toBe(1);
    expect(ip.stats()['icmp.drop.bad-checksum']).toBe(1);
    expect(ip.stats()['icmp.echo']).toBe(0);
  });
});
