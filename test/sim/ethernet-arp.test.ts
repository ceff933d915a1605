/**
 * Two stacks in TAP mode on an in-memory Ethernet "wire" (a MemoryLink pair carrying whole
 * frames), on a virtual clock: they find each other by ARP, then run TCP over it.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { parseMac } from '../../src/link/ethernet.js';
import { parseEthernet } from '../../src/link/ethernet.js';
import { FaultyLink } from '../../src/link/faulty.js';
import type { Link } from '../../src/link/link.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/runtime/clock.js';
import { seededRandom } from '../../src/runtime/random.js';
import { Stack } from '../../src/stack.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { randomBytes } from '../helpers/sim.js';

const A_MAC = parseMac('02:00:00:00:00:0a')!;
const B_MAC = parseMac('02:00:00:00:00:0b')!;

/** Record every frame on the wire as "src>dst ethertype" for the assertions below. */
function tapWire(link: Link, log: string[]): Link {
  return {
    get mtu() {
      return link.mtu;
    },
    onReceive: (h) => link.onReceive(h),
    send(frames) {
      for (const f of frames) {
        const e = parseEthernet(f);
        if (!("error" in e)) log.push(`${e.src[5]!.toString(16)}>${e.dst[5]!.toString(16)} ${e.etherType.toString(16)}`);
      }
      link.send(frames);
    },
    close: () => link.close(),
  };
}

function ethernetSim(seed: number, loss = 0) {
  const clock = new VirtualClock(1_000_000);
  const [la, lb] = MemoryLink.pair(clock, 1500);
  const wire: string[] = [];
  const aOut = loss ? new FaultyLink(la, clock, { seed: seed * 2 + 1, loss }) : la;
  const bOut = loss ? new FaultyLink(lb, clock, { seed: seed * 2 + 2, loss }) : lb;
  const station = (link: Link, addr: string, mac: typeof A_MAC, n: number, name: string) =>
    new Stack({
      clock,
      prefix: 24,
      gateway: parseIpv4('10.0.0.254')!,
      link: tapWire(link, wire),
      addr: parseIpv4(addr)!,
      ethernet: { mac },
      random: seededRandom(seed * 7 + n),
      name,
    });
  const a = station(aOut, '10.0.0.1', A_MAC, 3, 'A');
  const b = station(bOut, '10.0.0.2', B_MAC, 5, 'B');
  return { clock, a, b, wire };
}

async function transfer(sim: ReturnType<typeof ethernetSim>, bytes: number, seed: number) {
  const { clock, a, b } = sim;
  const data = randomBytes(bytes, seed);
  const got: Buffer[] = [];
  let done = false;
  b.createServer((s: TcpSocket) => {
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => {
      done = true;
      s.end();
    });
  }).listen(80);
  await clock.sleep(1); // the stacks' start: their announcements go out first
  const c = a.connect({ host: '10.0.0.2', port: 80 });
  c.on('connect', () => c.end(data));
  c.on('error', () => {});
  const ok = await clock.run(() => !done, 120_000);
  return { ok, same: Buffer.concat(got).equals(data) };
}

describe('two stacks on an in-memory Ethernet wire', () => {
  it('resolve each other by ARP before the first SYN, then transfer over TCP', async () => {
    const sim = ethernetSim(1);
    const { ok, same } = await transfer(sim, 200_000, 5);
    expect(ok).toBe(true);
    expect(same).toBe(true);
    // The start: both announce themselves (gratuitous ARP, broadcast), then A asks for B
    // (broadcast), B answers (unicast), and only then the SYN (IPv4) goes out.
    expect(sim.wire.slice(0, 5)).toEqual(['a>ff 806', 'b>ff 806', 'a>ff 806', 'b>a 806', 'a>b 800']);
    expect(sim.a.ethernet!.arp.state(parseIpv4('10.0.0.2')!)).toBe('REACHABLE');
    // B learnt A from A's request (STALE), then used it: DELAY, or REACHABLE once probed.
    expect(['DELAY', 'PROBE', 'REACHABLE']).toContain(sim.b.ethernet!.arp.state(parseIpv4('10.0.0.1')!));
    expect(sim.a.stats()).toMatchObject({ 'arp.resolved': 1, 'arp.failed': 0 });
    expect(sim.a.stats()['eth.drop.not-for-us'] ?? 0).toBe(0);
  });

  it('keeps a long idle connection working after its neighbour entries expired (resolved anew)', async () => {
    const sim = ethernetSim(2);
    const { clock, a, b } = sim;
    let server: TcpSocket | undefined;
    b.createServer((s: TcpSocket) => {
      server = s;
    }).listen(80);
    const c = a.connect({ host: '10.0.0.2', port: 80 });
    const got: Buffer[] = [];
    await clock.run(() => server === undefined, 10_000);
    server!.on('data', (d: Buffer) => got.push(d));
    // Quiet for 2 minutes: both entries go STALE, and unused for 60 s they are removed;
    // the next write resolves the address anew and the connection carries on.
    await clock.sleep(120_000);
    c.write('after a long pause');
    await clock.run(() => got.length === 0, 30_000);
    expect(Buffer.concat(got).toString()).toBe('after a long pause');
    expect(a.connections()[0]!.state).toBe('ESTABLISHED');
  });

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`resolves and delivers exactly with 10% frame loss both ways (seed ${seed})`, async () => {
      const sim = ethernetSim(seed, 0.1);
      const { ok, same } = await transfer(sim, 100_000, seed);
      expect(ok, `seed ${seed}`).toBe(true);
      expect(same, `seed ${seed}`).toBe(true);
    });
  }

  it('sends off-subnet destinations to the gateway MAC, and reports an unresolvable host as ICMP host unreachable', async () => {
    const sim = ethernetSim(3);
    const { clock, a } = sim;
    // Nobody has 10.0.0.9: three requests, 1 s apart, then the queued SYN comes back to us
    // as Destination Unreachable (host).
    const c = a.connect({ host: '10.0.0.9', port: 80 });
    c.on('error', () => {});
    await clock.sleep(2999);
    expect(a.stats()['arp.failed']).toBe(0);
    await clock.sleep(1);
    // Two packets were waiting: the SYN and its retransmission 1 s later (initial RTO).
    expect(a.stats()).toMatchObject({ 'arp.failed': 1, 'icmp.unreachable.local': 2, 'icmp.unreachable.in': 2 });
    // 2 announcements, 3 requests at 0, 1 and 2 s; at 3 s the SYN's next retransmission starts anew.
    expect(sim.wire.filter((w) => w === 'a>ff 806').length).toBe(2 + 3 + 1);
    c.destroy();
    // 192.0.2.7 is off-link: its next hop is the gateway 10.0.0.254, which is what A asks for.
    expect(a.ip.nextHop(parseIpv4('192.0.2.7')!)).toBe(parseIpv4('10.0.0.254'));
    expect(a.ip.nextHop(parseIpv4('10.0.0.2')!)).toBe(parseIpv4('10.0.0.2'));
    a.ethernet!.send(new Uint8Array(40), a.ip.nextHop(parseIpv4('192.0.2.7')!), clock.now());
    expect(a.neighbours().map((n) => `${n.ip} ${n.state}`)).toContain('10.0.0.254 INCOMPLETE');
  });
});
