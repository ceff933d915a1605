/**
 * TAP mode against the Linux kernel: the stack speaks Ethernet II and ARP on a TAP device
 * whose other side is a fresh network namespace. The kernel resolves our address by ARP
 * before it pings or connects; `ip neigh` and `arping` see our MAC; and two stacks on one
 * Linux bridge reach each other with the kernel only switching frames between them.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it, onTestFinished } from 'vitest';
import { createNetstackApp } from '../../src/http/routes.js';
import { HttpServer } from '../../src/http/server.js';
import { parseIpv4 } from '../../src/ip/addr.js';
import { formatMac, localMac } from '../../src/link/ethernet.js';
import type { Mac } from '../../src/link/ethernet.js';
import type { Link } from '../../src/link/link.js';
import { TunLink } from '../../src/link/tun.js';
import { Stack } from '../../src/stack.js';
import { spawnInNs, waitForLine } from '../helpers/cli.js';
import { createNetns, createNetnsTun, describeInterop, runOk } from '../helpers/netns.js';
import type { NetnsTun } from '../helpers/netns.js';
import { curlHash, patternHash } from '../helpers/http.js';
import { waitFor } from '../helpers/kernel-peer.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cliArgv = [process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts')];
const dir = mkdtempSync(join(tmpdir(), 'netstack-tap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stack in TAP mode serving `netstack up`'s HTTP app on port 80. */
function serve(link: Link, addr: string, prefix: number, gateway: string | undefined, mac: Mac): Stack {
  const stack = new Stack({
    link,
    addr: parseIpv4(addr)!,
    prefix,
    ...(gateway ? { gateway: parseIpv4(gateway)! } : {}),
    ethernet: { mac },
  });
  const app = createNetstackApp({
    addr,
    startedAt: Date.now(),
    stats: () => stack.stats(),
    connections: () => stack.connections(),
    neighbours: () => stack.neighbours(),
  });
  const server = new HttpServer({ handler: app });
  const listener = stack.createServer({ allowHalfOpen: true }, (s) => server.handleConnection(s));
  listener.listen(80);
  onTestFinished(() => {
    server.close();
    listener.close();
    stack.close();
  });
  return stack;
}

async function tapWithStack(): Promise<{ t: NetnsTun; stack: Stack; mac: Mac }> {
  const t = await createNetnsTun({ tap: true });
  const mac = localMac(randomBytes(6));
  const stack = serve(t.link, t.stackAddr, t.prefix, t.hostAddr, mac);
  return { t, stack, mac };
}

/** The kernel's neighbour entry for `addr` on the device, e.g. "10.1.2.2 lladdr 02:.. REACHABLE". */
async function kernelNeigh(t: NetnsTun, addr: string): Promise<string> {
  const r = await t.exec(['ip', 'neigh', 'show', addr, 'dev', t.dev]);
  return r.stdout.trim();
}

async function linkMac(t: NetnsTun, dev: string): Promise<string> {
  const r = await runOk(['ip', '-n', t.ns, '-j', 'link', 'show', 'dev', dev]);
  return (JSON.parse(r.stdout) as Array<{ address: string }>)[0]!.address;
}

describeInterop('TAP mode: Ethernet and ARP with the Linux kernel', () => {
  it('the kernel resolves us by ARP, pings and curls us; ip neigh shows our MAC REACHABLE; arping gets replies', async () => {
    const { t, stack, mac } = await tapWithStack();
    const ping = await t.exec(['ping', '-c', '3', '-i', '0.2', '-W', '2', '-n', t.stackAddr]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    expect(ping.stdout).toContain('3 received');
    expect(await curlHash(t, [`http://${t.stackAddr}/bytes/1000000`])).toBe(patternHash(1_000_000));

    const neigh = await kernelNeigh(t, t.stackAddr);
    expect(neigh).toContain(`lladdr ${formatMac(mac)}`);
    expect(neigh).toMatch(/REACHABLE$/);
    // Our side knows the kernel's MAC (learnt from its request, then used and confirmed).
    const kernelMac = await linkMac(t, t.dev);
    const ours = stack.neighbours().find((n) => n.ip === t.hostAddr);
    expect(ours?.mac).toBe(kernelMac);
    expect(['REACHABLE', 'STALE', 'DELAY', 'PROBE']).toContain(ours?.state);

    // arping (Debian's `arping`) sends ARP requests for our address and prints each reply.
    const arping = await t.exec(['arping', '-c', '3', '-W', '0.2', '-I', t.dev, t.stackAddr], { timeoutMs: 20_000 });
    expect(arping.code, arping.stdout + arping.stderr).toBe(0);
    expect(arping.stdout.toLowerCase().split('\n').filter((l) => l.includes(formatMac(mac))).length).toBe(3);
    expect(stack.stats()['arp.reply.out']).toBeGreaterThanOrEqual(4);
  });

  it('a kernel neighbour entry deleted mid-transfer is resolved again without losing the TCP connection', async () => {
    const { t, stack } = await tapWithStack();
    const size = 3_000_000;
    // A rate-limited download that lasts ~3 s; the entry is deleted twice while it runs.
    const hash = curlHash(t, ['--limit-rate', '1000K', `http://${t.stackAddr}/bytes/${size}`]);
    const connected = await waitFor(() => stack.connections().some((c) => c.state === 'ESTABLISHED'), 10_000);
    expect(connected).toBe(true);
    // ARP requests either way: the kernel asking for us, or our own probe of the kernel,
    // which the kernel also learns our MAC from (RFC 826: the receiver of a request merges
    // the sender's pair into its table).
    const arpRequests = () => (stack.stats()['arp.request.in'] ?? 0) + (stack.stats()['arp.request.out'] ?? 0);
    const requestsBefore = arpRequests();
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 800));
      // The kernel holds an entry again (it re-resolves only when it next sends to us: on a
      // loaded machine that may take a moment after the previous delete).
      expect(await waitFor(async () => /lladdr/.test(await kernelNeigh(t, t.stackAddr)), 5000)).toBe(true);
      await runOk(['ip', '-n', t.ns, 'neigh', 'del', t.stackAddr, 'dev', t.dev]);
    }
    expect(await hash).toBe(patternHash(size));
    // ARP ran again (the kernel asked, or learned us from our request) and it has our MAC once more.
    expect(arpRequests()).toBeGreaterThan(requestsBefore);
    // If the last delete came after the kernel's last packet to us it holds no entry now:
    // one ping makes it resolve us again.
    if (!/lladdr/.test(await kernelNeigh(t, t.stackAddr))) await t.exec(['ping', '-c', '1', '-W', '2', '-n', t.stackAddr]);
    expect(await kernelNeigh(t, t.stackAddr)).toMatch(/lladdr \S+ (REACHABLE|STALE|DELAY)/);
    expect(stack.stats()['tcp.rst.out'] ?? 0).toBe(0);
  });

  it('two stacks on one Linux bridge: one fetches a page from the other, the kernel only switches frames', async () => {
    const ns = await createNetns();
    const n = Number(ns.ns.slice(ns.ns.lastIndexOf('-') + 1));
    const net = `10.${(process.pid % 250) + 1}.${(n % 250) + 1}`;
    const tag = `${process.pid.toString(36)}${n.toString(36)}`;
    const links: TunLink[] = [];
    onTestFinished(() => links.forEach((l) => l.close()));
    const devs = ['a', 'b'].map((s) => `nsb${tag}${s}`.slice(-15));
    for (const dev of devs) {
      links.push(TunLink.open({ name: dev, tap: true }));
      await runOk(['ip', 'link', 'set', dev, 'netns', ns.ns]);
    }
    const br = `br${tag}`.slice(0, 15);
    await runOk(['ip', '-n', ns.ns, 'link', 'add', br, 'type', 'bridge']);
    for (const dev of [br, ...devs]) {
      await runOk(['ip', 'netns', 'exec', ns.ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    }
    for (const dev of devs) await runOk(['ip', '-n', ns.ns, 'link', 'set', dev, 'master', br, 'up']);
    await runOk(['ip', '-n', ns.ns, 'link', 'set', br, 'up']);

    const macA = localMac(randomBytes(6));
    const macB = localMac(randomBytes(6));
    const a = serve(links[0]!, `${net}.2`, 24, undefined, macA);
    const b = serve(links[1]!, `${net}.3`, 24, undefined, macB);

    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = http.get(
        { host: `${net}.3`, port: 80, path: '/bytes/200000', createConnection: () => a.connect({ host: `${net}.3`, port: 80 }) as never },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.on('error', reject);
        },
      );
      req.setTimeout(20_000, () => req.destroy(new Error('no response within 20 s')));
      req.on('error', reject);
    });
    expect(body.length).toBe(200_000);
    expect(body.every((v, i) => v === (i & 0xff))).toBe(true);

    expect(a.neighbours().find((x) => x.ip === `${net}.3`)).toMatchObject({ mac: formatMac(macB), state: 'REACHABLE' });
    expect(b.neighbours().find((x) => x.ip === `${net}.2`)?.mac).toBe(formatMac(macA));
    // The bridge learnt both stacks' MACs on their ports: it switched the frames.
    const fdb = await runOk(['bridge', '-n', ns.ns, 'fdb', 'show', 'br', br]);
    expect(fdb.stdout).toContain(formatMac(macA));
    expect(fdb.stdout).toContain(formatMac(macB));
    await ns.cleanup();
  });

  it('netstack up --tap --mac: ARP in the debug log and the pcap (tcpdump -e), neighbours on the status page and /metrics', async () => {
    const ns = await createNetns();
    const dev = `nstap${process.pid % 10000}`;
    const pcapFile = join(dir, 'tap.pcap');
    const mac = '02:00:5e:10:00:02';
    // --no-live: the plain status page lists the neighbour cache; the live page does not (yet).
    const { child, stderr: stderrOf } = spawnInNs(
      ns,
      [...cliArgv, 'up', '--tap', '--mac', mac, '--dev', dev, '--host', '10.68.0.1/24', '--addr', '10.68.0.2', '--pcap', pcapFile, '--log-level', 'debug', '--no-live'],
      repo,
    );
    const ready = await waitForLine(child, /netstack is up/);
    expect(ready).toBe(`netstack is up: 10.68.0.2 (MAC ${mac}) on TAP ${dev} (host 10.68.0.1/24). Try: ping 10.68.0.2  or  curl http://10.68.0.2/`);

    const ping = await ns.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', '-n', '10.68.0.2']);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    const neigh = await ns.exec(['ip', 'neigh', 'show', '10.68.0.2', 'dev', dev]);
    expect(neigh.stdout).toContain(`lladdr ${mac}`);

    const page = await ns.exec(['curl', '-sS', '-m', '10', 'http://10.68.0.2/']);
    expect(page.stdout).toContain('<h2>Neighbours (ARP)</h2>');
    expect(page.stdout).toMatch(/<tr><td>10\.68\.0\.1<\/td><td>[0-9a-f:]{17}<\/td><td>(REACHABLE|STALE|DELAY|PROBE)<\/td>/);
    const metrics = await ns.exec(['curl', '-sS', '-m', '10', 'http://10.68.0.2/metrics']);
    expect(metrics.stdout).toMatch(/^netstack_neighbour\{ip="10\.68\.0\.1",mac="[0-9a-f:]{17}",state="[A-Z]+"\} 1$/m);
    expect(metrics.stdout).toMatch(/^netstack_arp_reply_out_total [1-9]/m);

    child.kill('SIGINT');
    await new Promise((r) => child.once('close', r));
    expect(child.exitCode, stderrOf()).toBe(0);
    expect(stderrOf()).toContain('arp: who-has 10.68.0.2? answering');
    expect(stderrOf()).toContain('arp: gratuitous announcement');

    const dump = spawnSync('tcpdump', ['-e', '-n', '-r', pcapFile, 'arp'], { encoding: 'utf8', timeout: 10_000 });
    expect(dump.status, dump.stderr).toBe(0);
    expect(dump.stdout).toContain(`${mac} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 10.68.0.2 tell 10.68.0.2`);
    expect(dump.stdout).toMatch(/> ff:ff:ff:ff:ff:ff, ethertype ARP \(0x0806\), length 42: Request who-has 10\.68\.0\.2 tell 10\.68\.0\.1/);
    expect(dump.stdout).toContain(`${mac} > `);
    expect(dump.stdout).toContain(`Reply 10.68.0.2 is-at ${mac}`);
    await ns.cleanup();
  });

  it('refuses --mac without --tap in one sentence, exit code 1 (the other checks: test/unit/cli-up-args.test.ts)', async () => {
    const ns = await createNetns();
    const noTap = await ns.exec([...cliArgv, 'up', '--mac', '02:00:00:00:00:01'], { timeoutMs: 30_000 });
    expect(noTap.code).toBe(1);
    expect(noTap.stderr.trim()).toBe('netstack: --mac only applies to a TAP device: add --tap');
    await ns.cleanup();
  });
});
