/**
 * dgram-style UDP sockets and DNS between two stacks on a virtual clock: datagrams both
 * ways, prompt sends from outside a received batch, ICMP port unreachable as ECONNREFUSED
 * on connected sockets only (as Linux), and the resolver on one stack asking the
 * authoritative server on the other, over UDP and (after TC) TCP.
 */
import { describe, expect, it } from 'vitest';
import { DnsClient } from '../../src/dns/client.js';
import type { ResolverEvent } from '../../src/dns/resolver.js';
import { DnsService } from '../../src/dns/service.js';
import { TYPE } from '../../src/dns/wire.js';
import { defaultZones } from '../../src/dns/zone.js';
import { parseZoneFile } from '../../src/dns/zonefile.js';
import { seededRandom } from '../../src/runtime/random.js';
import type { UdpRemoteInfo } from '../../src/udp/socket.js';
import { A_ADDR, B_ADDR, createSim } from '../helpers/sim.js';

describe('UDP sockets on the stack', () => {
  it('binds, sends, receives with rinfo, reports address(), and closes', async () => {
    const sim = createSim({ seed: 11 });
    const server = sim.b.udp.createSocket('udp4');
    const got: Array<[string, UdpRemoteInfo]> = [];
    server.on('message', (msg, rinfo) => {
      got.push([msg.toString(), rinfo]);
      server.send(Buffer.from(`echo ${msg}`), rinfo.port, rinfo.address);
    });
    let listening = false;
    server.bind(7000, () => (listening = true));
    const client = sim.a.udp.createSocket('udp4');
    const replies: string[] = [];
    client.on('message', (msg) => replies.push(msg.toString()));
    client.send('hello', 7000, B_ADDR);
    await sim.clock.run(() => replies.length < 1, 1000);
    expect(listening).toBe(true);
    expect(server.address()).toEqual({ address: B_ADDR, family: 'IPv4', port: 7000 });
    const port = client.address().port;
    expect(port).toBeGreaterThanOrEqual(49152); // an implicit bind picks an ephemeral port
    expect(got).toEqual([['hello', { address: A_ADDR, family: 'IPv4', port, size: 5 }]]);
    expect(replies).toEqual(['echo hello']);
    let closed = false;
    client.close(() => (closed = true));
    await sim.clock.run(() => !closed, 10);
    expect(closed).toBe(true);
    expect(() => client.address()).toThrow(/not bound/);
    // The port is free again.
    const again = sim.a.udp.createSocket('udp4');
    let errors = 0;
    again.on('error', () => errors++);
    again.bind(port);
    await sim.clock.sleep(1);
    expect(errors).toBe(0);
  });

  it('reports EADDRINUSE for a bound port, as an error event', async () => {
    const sim = createSim({ seed: 12 });
    sim.a.udp.createSocket('udp4').bind(5353);
    const second = sim.a.udp.createSocket('udp4');
    const errs: string[] = [];
    second.on('error', (e: NodeJS.ErrnoException) => errs.push(e.code!));
    second.bind(5353);
    await sim.clock.sleep(1);
    expect(errs).toEqual(['EADDRINUSE']);
  });

  it('sends a datagram from a timer at once, without waiting for other traffic', async () => {
    const sim = createSim({ seed: 13 });
    const server = sim.b.udp.createSocket('udp4');
    const arrivals: number[] = [];
    server.on('message', () => arrivals.push(sim.clock.now()));
    server.bind(9);
    const client = sim.a.udp.createSocket('udp4');
    client.bind(0);
    await sim.clock.sleep(10);
    const sendAt = sim.clock.now() + 5000;
    sim.clock.at(sendAt, () => client.send('tick', 9, B_ADDR));
    await sim.clock.run(() => arrivals.length === 0, 20_000);
    // Only the link's own delay separates the send from the arrival.
    expect(arrivals).toHaveLength(1);
    expect(arrivals[0]! - sendAt).toBeLessThan(5);
  });

  it('turns ICMP port unreachable into ECONNREFUSED on a connected socket only', async () => {
    const sim = createSim({ seed: 14 });
    const connected = sim.a.udp.createSocket('udp4');
    const errs: NodeJS.ErrnoException[] = [];
    connected.on('error', (e) => errs.push(e));
    connected.connect(4444, B_ADDR);
    await sim.clock.sleep(1);
    connected.send('anyone?');
    await sim.clock.sleep(50);
    expect(errs.map((e) => e.code)).toEqual(['ECONNREFUSED']);
    expect(errs[0]!.message).toContain(`${B_ADDR}:4444`);

    // Linux reports nothing on an unconnected socket (no IP_RECVERR here).
    const loose = sim.a.udp.createSocket('udp4');
    const looseErrs: Error[] = [];
    loose.on('error', (e) => looseErrs.push(e));
    loose.send('anyone?', 4444, B_ADDR);
    await sim.clock.sleep(50);
    expect(looseErrs).toEqual([]);
    expect(sim.a.stats()['udp.icmp-error.in']).toBe(2);

    // A connected socket ignores datagrams from anyone but its peer.
    const peer = sim.b.udp.createSocket('udp4');
    peer.bind(4444);
    const other = sim.b.udp.createSocket('udp4');
    other.bind(4445);
    const seen: string[] = [];
    const c2 = sim.a.udp.createSocket('udp4');
    c2.on('message', (m) => seen.push(m.toString()));
    c2.connect(4444, B_ADDR);
    await sim.clock.sleep(1);
    const p = c2.address().port;
    other.send('from 4445', p, A_ADDR);
    peer.send('from 4444', p, A_ADDR);
    await sim.clock.sleep(50);
    expect(seen).toEqual(['from 4444']);
  });
});

describe('DNS between two stacks', () => {
  function setup(seed: number, zones = defaultZones(B_ADDR)) {
    const sim = createSim({ seed });
    const service = new DnsService(sim.b, zones);
    const events: ResolverEvent[] = [];
    const client = new DnsClient(sim.a, { servers: [B_ADDR], random: seededRandom(seed), trace: (e) => events.push(e) });
    return { sim, service, client, events };
  }

  it('resolves netstack.test over UDP from the stack serving it', async () => {
    const { sim, client, events } = setup(21);
    let result: Awaited<ReturnType<DnsClient['resolve']>> | undefined;
    void client.resolve('netstack.test').then((r) => (result = r));
    await sim.clock.run(() => !result, 5000);
    expect(result!.records).toMatchObject([{ type: 'A', address: B_ADDR, ttl: 300 }]);
    expect(events.map((e) => e.kind)).toEqual(['query', 'response']);
    expect(client.core.sizes).toEqual({ lookups: 0, ports: 0, conns: 0, cache: 1 });
  });

  it('rejects with ENOTFOUND for a missing name and EREFUSED outside the zones', async () => {
    const { sim, client } = setup(22);
    const codes: string[] = [];
    void client.resolve('nope.netstack.test').catch((e: NodeJS.ErrnoException) => codes.push(e.code!));
    void client.resolve('example.com').catch((e: NodeJS.ErrnoException) => codes.push(e.code!));
    await sim.clock.run(() => codes.length < 2, 5000);
    expect(codes.sort()).toEqual(['ENOTFOUND', 'EREFUSED']);
  });

  it('falls back to TCP when the UDP answer is truncated, and gets every record', async () => {
    const many = Array.from({ length: 100 }, (_, i) => `big A 10.9.${i >> 8}.${i & 255}`).join('\n');
    const zone = parseZoneFile(`$ORIGIN big.test.\n$TTL 60\n@ SOA ns admin 1 2 3 4 5\n${many}\n`, 'big.zone');
    const { sim, client, events } = setup(23, [zone]);
    let n = 0;
    void client.resolve('big.big.test').then((r) => (n = r.records.length));
    await sim.clock.run(() => n === 0, 10_000);
    expect(n).toBe(100);
    const queries = events.filter((e) => e.kind === 'query') as Array<Extract<ResolverEvent, { kind: 'query' }>>;
    expect(queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(events.some((e) => e.kind === 'response' && e.tc)).toBe(true);
    await sim.clock.sleep(100);
    expect(client.core.sizes.conns).toBe(0);
  });

  it('times out with ETIMEOUT when nobody answers, after retrying', async () => {
    const sim = createSim({ seed: 24 });
    const events: ResolverEvent[] = [];
    // No DNS server on B: each query draws ICMP port unreachable, which an unconnected socket ignores.
    const client = new DnsClient(sim.a, { servers: [B_ADDR], random: seededRandom(24), timeout: 500, attempts: 2, totalTimeout: 5000, trace: (e) => events.push(e) });
    let code = '';
    const start = sim.clock.now();
    void client.resolve('netstack.test', TYPE.A).catch((e: NodeJS.ErrnoException) => (code = e.code!));
    await sim.clock.run(() => code === '', 10_000);
    expect(code).toBe('ETIMEOUT');
    expect(sim.clock.now() - start).toBeGreaterThanOrEqual(1500);
    expect(events.filter((e) => e.kind === 'query')).toHaveLength(2);
  });
});
