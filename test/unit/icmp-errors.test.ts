/**
 * ICMP errors about datagrams we sent reach the transport that sent them (RFC 1122 section
 * 3.2.2): the quoted header and ports come up intact, the next-hop MTU of "fragmentation
 * needed" is read (RFC 1191), and a quote that is too short or names another source is
 * dropped, counted.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { ICMP_DEST_UNREACHABLE, ICMP_TIME_EXCEEDED, UNREACH_FRAG_NEEDED, UNREACH_PORT, parseIcmp, parseQuotedDatagram, writeIcmp } from '../../src/ip/icmp.js';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { IPV4_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { IcmpErrorInfo } from '../../src/ip/layer.js';
import { IpLayer } from '../../src/ip/layer.js';
import { ok } from '../helpers/unit.js';

const US = parseAddr('10.0.0.1')!;
const PEER = parseAddr('10.0.0.2')!;
const ROUTER = parseAddr('10.0.0.254')!;

/** An ICMP error from ROUTER to US quoting a UDP datagram src:srcPort -> PEER:dstPort with `quoteLen` data bytes. */
function icmpError(type: number, code: number, rest: number, quotedSrc: number, quoteLen = 8): Uint8Array {
  const icmpLen = 8 + IPV4_HEADER_LEN + quoteLen;
  const p = new Uint8Array(IPV4_HEADER_LEN + icmpLen);
  const q = IPV4_HEADER_LEN + 8;
  writeIpv4Header(p, q, { totalLength: IPV4_HEADER_LEN + 100, id: 1, df: true, protocol: PROTO_UDP, src: quotedSrc, dst: PEER });
  const udp = [0xc3, 0x50, 0x00, 0x35, 0, 108, 0, 0]; // 50000 -> 53
  p.set(udp.slice(0, quoteLen), q + IPV4_HEADER_LEN);
  writeIcmp(p, IPV4_HEADER_LEN, { type, code, restOfHeader: rest }, IPV4_HEADER_LEN + quoteLen);
  writeIpv4Header(p, 0, { totalLength: p.length, id: 9, df: false, protocol: PROTO_ICMP, src: ROUTER, dst: US });
  return p;
}

describe('ICMP errors to the transport', () => {
  function host() {
    const ip = new IpLayer({ addr: US, mtu: 1500, transmit: () => {} });
    const got: IcmpErrorInfo[] = [];
    ip.register(PROTO_UDP, { receive: () => {}, onIcmpError: (e) => got.push(e) });
    return { ip, got };
  }

  it('delivers destination unreachable with the quoted addresses, protocol and ports', () => {
    const h = host();
    h.ip.receive(icmpError(3, 3, 0, US), 0);
    expect(h.got).toHaveLength(1);
    const e = h.got[0]!;
    expect([e.type, e.code, e.mtu, e.src, e.dst, e.protocol]).toEqual([3, 3, 0, US, PEER, PROTO_UDP]);
    expect(Array.from(e.quoted.subarray(0, 4))).toEqual([0xc3, 0x50, 0x00, 0x35]);
  });

  it('reads the next-hop MTU of fragmentation needed, and passes time exceeded and parameter problem', () => {
    const h = host();
    h.ip.receive(icmpError(3, 4, 1400, US), 0);
    h.ip.receive(icmpError(11, 0, 0, US), 0);
    h.ip.receive(icmpError(12, 0, 0, US), 0);
    expect(h.got.map((e) => [e.type, e.code, e.mtu])).toEqual([
      [3, 4, 1400],
      [11, 0, 0],
      [12, 0, 0],
    ]);
  });

  it('drops a quote shorter than 8 transport bytes, or about a datagram someone else sent', () => {
    const h = host();
    h.ip.receive(icmpError(3, 3, 0, US, 4), 0);
    h.ip.receive(icmpError(3, 3, 0, parseAddr('10.0.0.77')!), 0);
    expect(h.got).toEqual([]);
    expect(h.ip.stats()['icmp.drop.bad-quote']).toBe(2);
  });

  it('counts an error for a protocol with no handler', () => {
    const ip = new IpLayer({ addr: US, mtu: 1500, transmit: () => {} });
    ip.receive(icmpError(3, 3, 0, US), 0);
    expect(ip.stats()['icmp.error.unclaimed']).toBe(1);
  });
});

function icmpBytes(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(8 + data.length);
  buf.set(data, 8);
  writeIcmp(buf, 0, { type, code, restOfHeader: rest }, data.length);
  return buf;
}

/** The datagram an ICMP error quotes: an IPv4 header (ours to PEER by default) and `data`. */
function quotedDatagram(data: Uint8Array, f: Partial<Ipv4Header> = {}): Uint8Array {
  const buf = new Uint8Array(IPV4_HEADER_LEN + data.length);
  buf.set(data, IPV4_HEADER_LEN);
  writeIpv4Header(buf, 0, { totalLength: f.totalLength ?? buf.length, id: 9, protocol: PROTO_TCP, src: US, dst: PEER, ...f });
  return buf;
}

/** A TCP header's first 8 bytes: ports 40000 > 80, sequence number 0x01020304. */
const TCP_QUOTE = Uint8Array.of(0x9c, 0x40, 0x00, 0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff);

describe('parseQuotedDatagram: the quote of an ICMP error is checked (RFC 792, RFC 1191, RFC 5927)', () => {
  it('parseQuotedDatagram reads the quoted header and transport bytes; fragmentation-needed carries the next-hop MTU', () => {
    const m = ok(parseIcmp(icmpBytes(ICMP_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, 1000, quotedDatagram(TCP_QUOTE, { totalLength: 1500 }))));
    const e = ok(parseQuotedDatagram(m, US));
    expect([e.type, e.code, e.mtu, e.src, e.dst, e.protocol]).toEqual([3, 4, 1000, US, PEER, PROTO_TCP]);
    expect(Array.from(e.quoted)).toEqual(Array.from(TCP_QUOTE));
    const unreachable = ok(parseQuotedDatagram(ok(parseIcmp(icmpBytes(ICMP_DEST_UNREACHABLE, UNREACH_PORT, 0x1234, quotedDatagram(TCP_QUOTE)))), US));
    expect(unreachable.mtu).toBe(0); // only fragmentation-needed carries an MTU
  });

  it('cuts the quote to the quoted datagram (padding after it is not data)', () => {
    const padded = new Uint8Array(IPV4_HEADER_LEN + 8 + 12);
    padded.set(quotedDatagram(TCP_QUOTE.subarray(0, 8)));
    const e = ok(parseQuotedDatagram(ok(parseIcmp(icmpBytes(ICMP_TIME_EXCEEDED, 0, 0, padded))), US));
    expect(e.quoted).toHaveLength(8);
  });

  it('a fragmentation-needed message without an MTU (a router older than RFC 1191) gives the next plateau below the datagram (RFC 1191 §7)', () => {
    const mtuOf = (totalLength: number) =>
      ok(parseQuotedDatagram(ok(parseIcmp(icmpBytes(3, UNREACH_FRAG_NEEDED, 0, quotedDatagram(TCP_QUOTE, { totalLength })))), US)).mtu;
    expect([mtuOf(1500), mtuOf(1492), mtuOf(1006), mtuOf(296), mtuOf(68)]).toEqual([1492, 1006, 508, 68, 68]);
  });

  const hostile: Array<[string, Uint8Array, string]> = [
    ['a quote shorter than an IPv4 header', quotedDatagram(TCP_QUOTE).subarray(0, 19), 'quote-truncated'],
    ['fewer than 8 bytes after the quoted header', quotedDatagram(TCP_QUOTE).subarray(0, 27), 'quote-truncated'],
    ['a quoted header that is not IPv4', (() => { const q = quotedDatagram(TCP_QUOTE); q[0] = 0x65; return q; })(), 'quote-bad-header'],
    ['a quoted IHL below 5', (() => { const q = quotedDatagram(TCP_QUOTE); q[0] = 0x44; return q; })(), 'quote-bad-header'],
    ['a quoted IHL past the quote', (() => { const q = quotedDatagram(TCP_QUOTE, { totalLength: 1500 }); q[0] = 0x4f; return q; })(), 'quote-truncated'],
    ['a quoted total length with no room for 8 transport bytes', quotedDatagram(TCP_QUOTE, { totalLength: 24 }), 'quote-bad-header'],
    ['a later fragment (its data holds no transport header)', quotedDatagram(TCP_QUOTE, { fragmentOffset: 1480 }), 'quote-fragment'],
    ['a datagram someone else sent', quotedDatagram(TCP_QUOTE, { src: PEER, dst: US }), 'quote-not-ours'],
  ];
  for (const [what, quote, reason] of hostile) {
    it(`refuses ${what} (${reason})`, () => {
      const m = ok(parseIcmp(icmpBytes(ICMP_DEST_UNREACHABLE, UNREACH_PORT, 0, quote)));
      expect(parseQuotedDatagram(m, US)).toEqual({ error: reason });
    });
  }
});
