/**
 * ICMP errors about datagrams we sent reach the transport that sent them (RFC 1122 section
 * 3.2.2): the quoted header and ports come up intact, the next-hop MTU of "fragmentation
 * needed" is read (RFC 1191), and a quote that is too short or names another source is
 * dropped, counted.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { writeIcmp } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, PROTO_ICMP, PROTO_UDP, writeIpv4Header } from '../../src/ip/ipv4.js';
import type { IcmpErrorInfo } from '../../src/ip/layer.js';
import { IpLayer } from '../../src/ip/layer.js';

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
