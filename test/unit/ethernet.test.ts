import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import {
  BROADCAST_MAC,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  buildEthernet,
  formatMac,
  isGroupMac,
  localMac,
  multicastMac,
  parseEthernet,
  parseMac,
} from '../../src/link/ethernet.js';
import { EthernetLayer } from '../../src/link/ethernet-layer.js';
import { seededRandom } from '../../src/runtime/random.js';

const OUR = parseMac('02:00:00:00:00:02')!;
const PEER = parseMac('02:00:00:00:00:01')!;

function layer() {
  const delivered: Uint8Array[] = [];
  const out: Uint8Array[] = [];
  const eth = new EthernetLayer({
    mac: OUR,
    addr: parseIpv4('10.1.0.2')!,
    prefix: 24,
    deliver: (p) => delivered.push(p),
    output: (f) => out.push(f),
    unreachable: () => {},
    multicast: [multicastMac(parseIpv4('224.0.0.1')!)],
  });
  return { eth, delivered, out };
}

function frame(dst: Uint8Array, src: Uint8Array, type: number, payloadLen = 46): Uint8Array {
  return buildEthernet(dst, src, type, new Uint8Array(payloadLen).fill(0xab));
}

describe('Ethernet II codec', () => {
  it('round-trips a frame and pads one shorter than 60 bytes with zeros', () => {
    const f = buildEthernet(PEER, OUR, ETHERTYPE_IPV4, Uint8Array.of(1, 2, 3));
    expect(f.length).toBe(60);
    expect([...f.subarray(17)]).toEqual(new Array(43).fill(0));
    const p = parseEthernet(f);
    if ('error' in p) throw new Error(p.error);
    expect(formatMac(p.dst)).toBe('02:00:00:00:00:01');
    expect(formatMac(p.src)).toBe('02:00:00:00:00:02');
    expect(p.etherType).toBe(ETHERTYPE_IPV4);
    expect([...p.payload.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect(buildEthernet(PEER, OUR, ETHERTYPE_IPV4, new Uint8Array(1500)).length).toBe(1514);
  });

  it('accepts a frame shorter than the 60-byte minimum on input (14-byte header only)', () => {
    const p = parseEthernet(frame(OUR, PEER, ETHERTYPE_ARP).subarray(0, 14));
    expect('error' in p ? p.error : p.payload.length).toBe(0);
  });

  it('rejects hostile headers without throwing: short, VLAN tags, 802.3 lengths, group source', () => {
    for (let n = 0; n < 14; n++) expect(parseEthernet(new Uint8Array(n))).toEqual({ error: 'short' });
    expect(parseEthernet(frame(OUR, PEER, 0x8100))).toEqual({ error: 'vlan' });
    expect(parseEthernet(frame(OUR, PEER, 0x88a8))).toEqual({ error: 'vlan' });
    expect(parseEthernet(frame(OUR, PEER, 0x05dc))).toEqual({ error: 'llc' });
    expect(parseEthernet(frame(OUR, BROADCAST_MAC, ETHERTYPE_IPV4))).toEqual({ error: 'bad-src' });
  });

  it('never throws on random bytes of any length', () => {
    const rand = seededRandom(42);
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256));
      expect(() => parseEthernet(b)).not.toThrow();
    }
  });

  it('parses and formats MAC text, and makes locally administered unicast addresses', () => {
    expect(parseMac('02-AB-cd-00-00-01')).toEqual(Uint8Array.of(2, 0xab, 0xcd, 0, 0, 1));
    for (const bad of ['', '02:00:00:00:00', '02:00:00:00:00:00:00', '2:00:00:00:00:01', 'zz:00:00:00:00:01']) {
      expect(parseMac(bad)).toBeUndefined();
    }
    const m = localMac(Uint8Array.of(0xff, 1, 2, 3, 4, 5));
    expect(formatMac(m)).toBe('fe:01:02:03:04:05');
    expect(isGroupMac(m)).toBe(false);
    expect(m[0]! & 2).toBe(2);
    expect(formatMac(multicastMac(parseIpv4('239.255.129.5')!))).toBe('01:00:5e:7f:81:05');
  });
});

describe('EthernetLayer receive filter', () => {
  it('delivers IPv4 for our MAC, broadcast and a joined group; counts and drops the rest', () => {
    const { eth, delivered } = layer();
    eth.receive(frame(OUR, PEER, ETHERTYPE_IPV4), 0);
    eth.receive(frame(BROADCAST_MAC, PEER, ETHERTYPE_IPV4), 0);
    eth.receive(frame(multicastMac(parseIpv4('224.0.0.1')!), PEER, ETHERTYPE_IPV4), 0);
    expect(delivered.length).toBe(3);
    eth.receive(frame(PEER, parseMac('02:00:00:00:00:09')!, ETHERTYPE_IPV4), 0); // for another host
    eth.receive(frame(multicastMac(parseIpv4('224.0.0.251')!), PEER, ETHERTYPE_IPV4), 0); // not joined
    eth.receive(frame(OUR, PEER, 0x86dd), 0); // IPv6
    eth.receive(frame(OUR, PEER, 0x8100), 0); // VLAN-tagged
    eth.receive(frame(OUR, PEER, 0x0100), 0); // 802.3 length
    eth.receive(frame(BROADCAST_MAC, OUR, ETHERTYPE_IPV4), 0); // our own frame, looped back
    eth.receive(new Uint8Array(5), 0);
    expect(delivered.length).toBe(3);
    expect(eth.stats()).toMatchObject({
      'eth.in': 10,
      'eth.drop.not-for-us': 2,
      'eth.drop.ethertype': 1,
      'eth.drop.vlan': 1,
      'eth.drop.llc': 1,
      'eth.drop.looped': 1,
      'eth.drop.short': 1,
    });
  });

  it('sends broadcast and multicast IPv4 without ARP', () => {
    const { eth, out } = layer();
    eth.send(new Uint8Array(28), parseIpv4('255.255.255.255')!, 0);
    eth.send(new Uint8Array(28), parseIpv4('10.1.0.255')!, 0);
    eth.send(new Uint8Array(28), parseIpv4('224.0.0.1')!, 0);
    expect(out.map((f) => formatMac(f.subarray(0, 6)))).toEqual(['ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01']);
    expect(eth.stats()['arp.request.out']).toBe(0);
  });
});
