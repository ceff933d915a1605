import { describe, expect, it } from 'vitest';
import { allowNetworks, parseNetwork, remoteIpv4 } from '../../src/http/access.js';
import { parseIpv4 } from '../../src/ip/addr.js';

describe('parseNetwork', () => {
  it('reads CIDR networks and single addresses, clearing host bits', () => {
    expect(parseNetwork('10.77.0.0/24')).toEqual({ addr: parseIpv4('10.77.0.0'), prefix: 24 });
    expect(parseNetwork('10.77.0.9/24')).toEqual({ addr: parseIpv4('10.77.0.0'), prefix: 24 });
    expect(parseNetwork('192.168.1.5')).toEqual({ addr: parseIpv4('192.168.1.5'), prefix: 32 });
    expect(parseNetwork('0.0.0.0/0')).toEqual({ addr: 0, prefix: 0 });
  });
  it('refuses anything else', () => {
    for (const bad of ['', '10.0.0.0/33', '10.0.0/8', '256.0.0.1', '10.0.0.1/', 'a.b.c.d/8', '10.0.0.1/8/8', '::1']) {
      expect(parseNetwork(bad), bad).toBeUndefined();
    }
  });
});

describe('allowNetworks', () => {
  const allow = allowNetworks([parseNetwork('10.77.0.1')!, parseNetwork('192.168.0.0/16')!]);
  it('admits exactly the addresses inside the networks', () => {
    expect(allow('10.77.0.1')).toBe(true);
    expect(allow('10.77.0.3')).toBe(false);
    expect(allow('192.168.200.7')).toBe(true);
    expect(allow('192.169.0.1')).toBe(false);
  });
  it('understands IPv4-mapped IPv6 (kernel dual-stack sockets) and refuses what is not IPv4', () => {
    expect(remoteIpv4('::ffff:10.77.0.1')).toBe(parseIpv4('10.77.0.1'));
    expect(allow('::ffff:10.77.0.1')).toBe(true);
    expect(allow('::1')).toBe(false);
    expect(allow('')).toBe(false);
    expect(allowNetworks([])('10.77.0.1')).toBe(false);
    expect(allowNetworks([parseNetwork('0.0.0.0/0')!])('203.0.113.9')).toBe(true);
  });
});
