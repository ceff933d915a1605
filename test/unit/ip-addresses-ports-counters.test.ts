/**
 * The small shared pieces of the IP layer: IPv4 address text and arithmetic (RFC 791, RFC 4632
 * prefixes, RFC 1122 §3.2.1.3 source rules, RFC 5771 multicast), the ephemeral port range
 * (RFC 6335 §6, RFC 6056), the drop counters and the token bucket that rate-limits replies.
 */
import { describe, expect, it } from 'vitest';
import {
  formatIpv4, inSubnet, isMulticast, isUnicastSource, parseCidr, parseIpv4, prefixMask, readIpv4, writeIpv4,
} from '../../src/ip/addr.js';
import { EPHEMERAL_COUNT, EPHEMERAL_FIRST, EPHEMERAL_LAST, findEphemeralPort } from '../../src/ip/ports.js';
import { Counters, TokenBucket } from '../../src/ip/stats.js';

describe('IPv4 address text', () => {
  it('parses a dotted quad into its 32-bit value, most significant octet first', () => {
    expect(parseIpv4('0.0.0.0')).toBe(0);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(parseIpv4('192.168.1.254')).toBe(0xc0a801fe);
    expect(parseIpv4('  1.2.3.4 ')).toBe(0x01020304);
    expect(parseIpv4('128.0.0.0')).toBeGreaterThan(0); // unsigned, never negative
  });

  it('refuses anything that is not exactly four octets of 0..255', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.256', '1.2.3.999', '1.2.3.1000', 'a.b.c.d', '1..2.3', '1.2.3.4/24', '-1.2.3.4', '01.2.3.4x', 'x1.2.3.4']) {
      expect(parseIpv4(bad), bad).toBeUndefined();
    }
    expect(parseIpv4('001.002.003.004')).toBe(0x01020304);
  });

  it('formats every octet in order', () => {
    expect(formatIpv4(0xc0a801fe)).toBe('192.168.1.254');
    expect(formatIpv4(0xffffffff)).toBe('255.255.255.255');
    expect(formatIpv4(0x01020304)).toBe('1.2.3.4');
    expect(formatIpv4(0)).toBe('0.0.0.0');
  });

  it('parses a.b.c.d/len with a prefix of 1..32 only', () => {
    expect(parseCidr('10.0.0.1/24')).toEqual({ addr: 0x0a000001, prefix: 24 });
    expect(parseCidr('10.0.0.1/32')).toEqual({ addr: 0x0a000001, prefix: 32 });
    expect(parseCidr('10.0.0.1/1')).toEqual({ addr: 0x0a000001, prefix: 1 });
    for (const bad of ['10.0.0.1', '10.0.0.1/0', '10.0.0.1/33', '10.0.0.1/24/8', '10.0.0.1/x', '10.0.0.1/', '10.0.0.1/123', '10.0.0.1/a1', '10.0.0.1/1a', '10.0.0.256/24', '/24']) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });
});

describe('IPv4 prefixes and address classes', () => {
  it('a prefix length becomes its netmask', () => {
    expect(prefixMask(0)).toBe(0);
    expect(prefixMask(1)).toBe(0x80000000);
    expect(prefixMask(8)).toBe(0xff000000);
    expect(prefixMask(24)).toBe(0xffffff00);
    expect(prefixMask(31)).toBe(0xfffffffe);
    expect(prefixMask(32)).toBe(0xffffffff);
  });

  it('an address is in a subnet when the prefix bits agree', () => {
    const net = parseIpv4('10.1.2.0')!;
    expect(inSubnet(parseIpv4('10.1.2.200')!, net, 24)).toBe(true);
    expect(inSubnet(parseIpv4('10.1.3.1')!, net, 24)).toBe(false);
    expect(inSubnet(parseIpv4('10.1.3.1')!, net, 16)).toBe(true);
    expect(inSubnet(parseIpv4('200.1.2.3')!, parseIpv4('192.0.0.0')!, 1)).toBe(true);
    expect(inSubnet(parseIpv4('10.1.2.3')!, parseIpv4('192.0.0.0')!, 1)).toBe(false);
    expect(inSubnet(parseIpv4('10.1.2.3')!, parseIpv4('10.1.2.3')!, 32)).toBe(true);
    expect(inSubnet(parseIpv4('10.1.2.4')!, parseIpv4('10.1.2.3')!, 32)).toBe(false);
    expect(inSubnet(parseIpv4('1.2.3.4')!, parseIpv4('9.9.9.9')!, 0)).toBe(true);
  });

  it('multicast is exactly 224.0.0.0/4 (RFC 5771)', () => {
    expect(isMulticast(parseIpv4('224.0.0.1')!)).toBe(true);
    expect(isMulticast(parseIpv4('239.255.255.255')!)).toBe(true);
    expect(isMulticast(parseIpv4('223.255.255.255')!)).toBe(false);
    expect(isMulticast(parseIpv4('240.0.0.0')!)).toBe(false);
    expect(isMulticast(parseIpv4('10.0.0.1')!)).toBe(false);
  });

  it('a host source is not 0.0.0.0, loopback, broadcast, multicast or class E (RFC 1122 §3.2.1.3)', () => {
    for (const ok of ['1.0.0.0', '10.0.0.1', '126.255.255.255', '128.0.0.1', '223.255.255.255']) expect(isUnicastSource(parseIpv4(ok)!), ok).toBe(true);
    for (const bad of ['0.0.0.0', '127.0.0.1', '127.255.255.255', '224.0.0.1', '239.1.1.1', '240.0.0.1', '255.255.255.255']) {
      expect(isUnicastSource(parseIpv4(bad)!), bad).toBe(false);
    }
  });

  it('reads and writes addresses in network byte order at an offset', () => {
    const buf = new Uint8Array(8);
    writeIpv4(buf, 2, 0xc0a801fe);
    expect([...buf]).toEqual([0, 0, 192, 168, 1, 254, 0, 0]);
    expect(readIpv4(buf, 2)).toBe(0xc0a801fe);
    writeIpv4(buf, 4, 0xffffffff);
    expect(readIpv4(buf, 4)).toBe(0xffffffff);
    expect(readIpv4(Uint8Array.from([0x80, 0, 0, 1]), 0)).toBe(0x80000001);
  });
});

describe('ephemeral ports (RFC 6335 §6)', () => {
  it('the range is IANA dynamic 49152..65535', () => {
    expect([EPHEMERAL_FIRST, EPHEMERAL_LAST, EPHEMERAL_COUNT]).toEqual([49152, 65535, 16384]);
  });

  it('takes the first free port from the starting offset on, wrapping around the range', () => {
    expect(findEphemeralPort(0, () => true)).toBe(49152);
    expect(findEphemeralPort(10, () => true)).toBe(49162);
    expect(findEphemeralPort(EPHEMERAL_COUNT - 1, () => true)).toBe(65535);
    expect(findEphemeralPort(EPHEMERAL_COUNT, () => true)).toBe(49152);
    expect(findEphemeralPort(EPHEMERAL_COUNT - 1, (p) => p !== 65535)).toBe(49152);
    expect(findEphemeralPort(5, (p) => p >= 60000)).toBe(60000);
  });

  it('asks about every port exactly once and gives up when all are taken', () => {
    const asked: number[] = [];
    expect(findEphemeralPort(123, (p) => (asked.push(p), false))).toBeUndefined();
    expect(asked.length).toBe(EPHEMERAL_COUNT);
    expect(new Set(asked).size).toBe(EPHEMERAL_COUNT);
    expect(Math.min(...asked)).toBe(49152);
    expect(Math.max(...asked)).toBe(65535);
    expect(asked[0]).toBe(49152 + 123);
    expect(findEphemeralPort(0, (p) => p === 65535)).toBe(65535);
  });
});

describe('drop counters', () => {
  it('count by name, show pre-registered names while zero, and snapshot with a prefix', () => {
    const c = new Counters(['in', 'drop.bad']);
    expect(c.snapshot()).toEqual({ in: 0, 'drop.bad': 0 });
    c.inc('in');
    c.inc('in', 4);
    c.inc('new');
    expect(c.get('in')).toBe(5);
    expect(c.get('new')).toBe(1);
    expect(c.get('never')).toBe(0);
    expect(c.snapshot('ip.')).toEqual({ 'ip.in': 5, 'ip.drop.bad': 0, 'ip.new': 1 });
    const copy = c.snapshot();
    copy['in'] = 99;
    expect(c.get('in')).toBe(5);
    expect(new Counters().snapshot()).toEqual({});
  });
});

describe('token bucket (RFC 1812 §4.3.2.8 style rate limit)', () => {
  it('starts full, spends one token per event, and refuses when empty', () => {
    const b = new TokenBucket(1, 3);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
  });

  it('refills continuously at the rate, never above the burst', () => {
    const b = new TokenBucket(10, 2); // one token per 100 ms
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([true, true, false]);
    expect(b.take(99)).toBe(false); // 0.99 of a token
    expect(b.take(100)).toBe(true); // 1.0 accrued by now
    expect(b.take(150)).toBe(false);
    expect(b.take(10_000)).toBe(true); // a long pause refills to the burst only
    expect(b.take(10_000)).toBe(true);
    expect(b.take(10_000)).toBe(false);
  });

  it('a clock that goes backwards neither refills nor moves the reference point back', () => {
    const b = new TokenBucket(10, 1);
    expect(b.take(1000)).toBe(true);
    expect(b.take(500)).toBe(false); // earlier time: no refill
    expect(b.take(1050)).toBe(false); // only 50 ms since 1000, not 550 since 500
    expect(b.take(1100)).toBe(true);
  });
});
