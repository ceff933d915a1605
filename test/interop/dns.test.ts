/**
 * DNS against the Linux side of a namespace: `dig` (bind9-dnsutils) asks the stack's
 * authoritative server over UDP and TCP; the stack's resolver asks `dnsmasq`; and a
 * connected UDP socket hears the kernel's ICMP port unreachable as ECONNREFUSED.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DnsClient } from '../../src/dns/client.js';
import type { ResolverEvent } from '../../src/dns/resolver.js';
import { DnsService } from '../../src/dns/service.js';
import { TYPE } from '../../src/dns/wire.js';
import { defaultZones } from '../../src/dns/zone.js';
import { parseZoneFile } from '../../src/dns/zonefile.js';
import { parseIpv4 } from '../../src/ip/addr.js';
import { Stack } from '../../src/stack.js';
import { createNetnsTun, describeInterop } from '../helpers/netns.js';
import type { NetnsTun } from '../helpers/netns.js';

/** A zone whose one name has more A records than fit 512 bytes (40 * 16 bytes + headers). */
function bigZone(): string {
  const lines = Array.from({ length: 40 }, (_, i) => `many A 10.200.0.${i + 1}`);
  return ['$ORIGIN big.test.', '$TTL 60', '@ SOA ns admin 1 3600 900 604800 60', '@ NS ns', 'ns A 10.200.0.53', ...lines, ''].join('\n');
}

describeInterop('DNS against the Linux side (dig, dnsmasq)', () => {
  let t: NetnsTun;
  let stack: Stack;
  let dns: DnsService;

  beforeAll(async () => {
    t = await createNetnsTun();
    stack = new Stack({ link: t.link, addr: parseIpv4(t.stackAddr)! });
    dns = new DnsService(stack, [...defaultZones(t.stackAddr), parseZoneFile(bigZone(), 'big.zone')]);
  });
  afterAll(() => {
    dns?.close();
    stack?.close();
  });

  const dig = (...args: string[]) => t.exec(['dig', '+time=2', '+tries=2', `@${t.stackAddr}`, ...args]);

  it('dig over UDP gets an authoritative A record for netstack.test', async () => {
    const r = await dig('netstack.test');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('status: NOERROR');
    expect(r.stdout).toMatch(/flags: qr aa rd;/);
    expect(r.stdout).toMatch(new RegExp(`^netstack\\.test\\.\\s+300\\s+IN\\s+A\\s+${t.stackAddr.replace(/\./g, '\\.')}$`, 'm'));
    expect(r.stdout).toContain('(UDP)');
  });

  it('dig +tcp gets the same answer over TCP (RFC 7766 framing)', async () => {
    const r = await dig('+tcp', 'netstack.test');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('status: NOERROR');
    expect(r.stdout).toContain('(TCP)');
    expect(r.stdout).toMatch(/^netstack\.test\.\s+300\s+IN\s+A\s+/m);
  });

  it('dig -x finds the PTR of the stack address', async () => {
    const r = await dig('+short', '-x', t.stackAddr);
    expect(r.stdout.trim()).toBe('netstack.test.');
  });

  it('dig gets NXDOMAIN with the SOA, and REFUSED for a name outside the zones', async () => {
    const nx = await dig('nope.netstack.test');
    expect(nx.stdout).toContain('status: NXDOMAIN');
    expect(nx.stdout).toMatch(/AUTHORITY SECTION:\nnetstack\.test\.\s+60\s+IN\s+SOA\s+netstack\.test\. hostmaster\.netstack\.test\. 1 /);
    const refused = await dig('example.com');
    expect(refused.stdout).toContain('status: REFUSED');
  });

  it('a large answer is truncated over UDP (TC) and whole over TCP', async () => {
    // +ignore: show the truncated UDP answer instead of retrying.
    const udp = await dig('+noedns', '+ignore', 'many.big.test');
    expect(udp.stdout).toMatch(/flags: qr aa tc rd;/);
    expect(udp.stdout).toContain('ANSWER: 0');
    // Without +ignore dig itself retries over TCP and gets all 40 records.
    const retried = await dig('+noedns', 'many.big.test');
    expect(retried.stdout).toContain('Truncated, retrying in TCP mode');
    expect(retried.stdout).toContain('ANSWER: 40');
    const tcp = await dig('+tcp', '+short', 'many.big.test');
    expect(tcp.stdout.trim().split('\n')).toHaveLength(40);
  });

  it("the stack's resolver asks dnsmasq: A records, a CNAME chain, NXDOMAIN", async () => {
    const dnsmasq: ChildProcess = t.spawn(
      [
        'dnsmasq',
        '--keep-in-foreground',
        '--no-resolv',
        '--no-hosts',
        '--conf-file=/dev/null',
        '--bind-interfaces',
        `--listen-address=${t.hostAddr}`,
        '--local=/test/',
        `--host-record=web.test,${t.hostAddr}`,
        '--cname=www.test,web.test',
        '--pid-file=',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let dnsmasqErr = '';
    dnsmasq.stderr!.on('data', (b: Buffer) => (dnsmasqErr += b.toString()));
    const events: ResolverEvent[] = [];
    // dnsmasq needs a moment to bind: the resolver's retries (250 ms, then doubling) cover it.
    const client = new DnsClient(stack, { servers: [t.hostAddr], timeout: 250, attempts: 5, trace: (e) => events.push(e) });
    try {
      const web = await client.resolve('web.test');
      expect(web.records).toMatchObject([{ type: 'A', address: t.hostAddr }]);
      const www = await client.resolve('www.test', TYPE.A);
      expect([www.canonicalName, www.cnames]).toEqual(['web.test', ['web.test']]);
      const missing = await client.resolve('nope.test').then(
        () => 'resolved',
        (e: NodeJS.ErrnoException) => e.code,
      );
      expect(missing).toBe('ENOTFOUND');
      // Every answer matched its query: nothing was ignored.
      expect(events.filter((e) => e.kind === 'ignored')).toEqual([]);
      expect(client.core.sizes).toMatchObject({ lookups: 0, ports: 0, conns: 0 });
    } catch (e) {
      throw new Error(`${(e as Error).message}; dnsmasq said: ${dnsmasqErr}`);
    } finally {
      client.close();
      dnsmasq.kill('SIGTERM');
    }
  });

  it('a connected UDP socket hears the kernel’s port unreachable as ECONNREFUSED', async () => {
    const sock = stack.udp.createSocket('udp4');
    const err = new Promise<NodeJS.ErrnoException>((resolve) => sock.once('error', resolve));
    sock.connect(9, t.hostAddr, () => sock.send('is anyone there?'));
    const e = await Promise.race([err, new Promise<undefined>((r) => setTimeout(r, 5000))]);
    sock.close();
    expect(e?.code).toBe('ECONNREFUSED');
  });
});
