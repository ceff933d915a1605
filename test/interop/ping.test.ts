/**
 * The Linux kernel in a fresh network namespace pings us through a real TUN device.
 *
 * Part 1 checks the device layer alone (TunLink + native addon) with a tiny reflector
 * written in this file: it turns each ICMP echo request into a reply by swapping the
 * addresses and fixing the checksum. Part 2 runs the real Stack.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { internetChecksum } from '../../src/ip/checksum.js';
import { parseIpv4, readIpv4, writeIpv4 } from '../../src/ip/addr.js';
import type { NetnsTun } from '../helpers/netns.js';
import { PcapWriter, wrapLink } from '../../src/link/pcap.js';
import { DEFAULT_TX_QUEUE_LEN, TunLink } from '../../src/link/tun.js';
import { Stack } from '../../src/stack.js';
import type { Link } from '../../src/link/link.js';
import { createNetns, createNetnsTun, describeInterop } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';

const dir = mkdtempSync(join(tmpdir(), 'netstack-ping-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const IPPROTO_ICMP = 1;
const tunModule = fileURLToPath(new URL('../../src/link/tun.ts', import.meta.url));

/**
 * Run an ES module snippet with node (+ tsx) inside a namespace. `TunLink` is in scope.
 * Used where the test needs a process of its own: crashing, or GC of a device handle.
 */
function nodeInNs(ns: Netns, body: string, nodeFlags: string[] = []) {
  const code = `const { TunLink } = await import(${JSON.stringify(tunModule)});\n${body}`;
  return ns.exec([process.execPath, ...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', code], {
    timeoutMs: 30_000,
  });
}

/** Snippet: a TUN device in the namespace with 10.55.0.1/24 on the kernel side, and a
 * function that makes the kernel send it one UDP datagram (to 10.55.0.2). */
const deviceAndPoke = `
  const { createSocket } = await import('node:dgram');
  const link = TunLink.open({ name: 'lifetime0' });
  link.configure({ addr: 0x0a370001, prefix: 24 });
  const poke = () => new Promise((done) => {
    const s = createSocket('udp4');
    s.send('x', 9, '10.55.0.2', () => { s.close(); done(); });
  });
`;

function isEchoRequest(p: Uint8Array): boolean {
  const ihl = (p[0]! & 0x0f) * 4;
  const fragOffset = ((p[6]! & 0x1f) << 8) | p[7]!;
  return p[0]! >> 4 === 4 && p[9] === IPPROTO_ICMP && fragOffset === 0 && p[ihl] === 8;
}

/**
 * The smallest possible echo responder: swap source and destination (the header checksum
 * does not change: the one's-complement sum is commutative) and, in the fragment that
 * carries the ICMP header, set type 8 -> 0 and update the ICMP checksum incrementally
 * (RFC 1624 eq. 3: HC' = ~(~HC + ~m + m'), with m = 0x0800, m' = 0x0000).
 * Later fragments are reflected as they are, so the kernel reassembles the reply.
 */
function reflect(p: Uint8Array): Uint8Array | undefined {
  if (p[0]! >> 4 !== 4 || p[9] !== IPPROTO_ICMP) return undefined;
  const r = Uint8Array.from(p);
  const src = readIpv4(p, 12);
  writeIpv4(r, 12, readIpv4(p, 16));
  writeIpv4(r, 16, src);
  const ihl = (p[0]! & 0x0f) * 4;
  const fragOffset = ((p[6]! & 0x1f) << 8) | p[7]!;
  if (fragOffset === 0) {
    if (r[ihl] !== 8) return undefined;
    r[ihl] = 0;
    const hc = (r[ihl + 2]! << 8) | r[ihl + 3]!;
    let sum = (~hc & 0xffff) + (~0x0800 & 0xffff) + 0x0000;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const nc = ~sum & 0xffff;
    r[ihl + 2] = nc >> 8;
    r[ihl + 3] = nc & 0xff;
  }
  return r;
}

function reflector(link: Link): void {
  link.onReceive((packets) => {
    const replies: Uint8Array[] = [];
    for (const p of packets) {
      const r = reflect(p);
      if (r) replies.push(r);
    }
    link.send(replies);
  });
}

/** IPv4 + UDP with checksum 0 ("no checksum", RFC 768), for the send-path test. */
function udpPacket(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(28 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  writeIpv4(p, 12, parseIpv4(src)!);
  writeIpv4(p, 16, parseIpv4(dst)!);
  const h = internetChecksum(p, 0, 20);
  p[10] = h >> 8;
  p[11] = h & 0xff;
  p[20] = srcPort >> 8;
  p[21] = srcPort & 0xff;
  p[22] = dstPort >> 8;
  p[23] = dstPort & 0xff;
  const ulen = 8 + payload.length;
  p[24] = ulen >> 8;
  p[25] = ulen & 0xff;
  p.set(payload, 28);
  return p;
}

function pingReceived(stdout: string): number {
  const m = /(\d+) (?:packets )?received/.exec(stdout);
  return m ? Number(m[1]) : -1;
}

describeInterop('TunLink against the kernel (echo reflector)', () => {
  it('delivers packets that queued up before reading started in one batch, in order', async () => {
    const t = await createNetnsTun();
    // Nobody reads yet: the kernel keeps the requests in the device queue.
    const ping = await t.exec(['ping', '-c', '20', '-i', '0.002', '-W', '0.1', '-n', t.stackAddr]);
    expect(ping.stdout).toContain('20 packets transmitted');
    const batches: Uint8Array[][] = [];
    await new Promise<void>((resolve) => {
      t.link.onReceive((packets) => {
        batches.push(packets);
        resolve();
      });
    });
    const requests = batches[0]!.filter(isEchoRequest);
    expect(requests).toHaveLength(20);
    expect(requests.map((p) => (p[26]! << 8) | p[27]!)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const p of requests) expect(readIpv4(p, 16)).toBe(parseIpv4(t.stackAddr));
    expect(t.link.stats.rxBatches).toBe(1);
    expect(t.link.stats.rxPackets).toBe(batches[0]!.length);
  });

  it('answers ping -c 3 through the reflector; stats count both directions', async () => {
    const t = await createNetnsTun();
    reflector(t.link);
    const r = await t.exec(['ping', '-c', '3', '-i', '0.2', '-W', '2', '-n', t.stackAddr]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(pingReceived(r.stdout)).toBe(3);
    expect(t.link.stats.rxPackets).toBeGreaterThanOrEqual(3);
    expect(t.link.stats.txPackets).toBe(3);
    expect(t.link.stats.txBytes).toBe(3 * 84);
    expect(t.link.stats.txDrops).toBe(0);
  });

  it('carries fragments both ways (ping -s 4000 with MTU 1500)', async () => {
    const t = await createNetnsTun();
    reflector(t.link);
    const r = await t.exec(['ping', '-c', '1', '-s', '4000', '-W', '2', '-n', t.stackAddr]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('4008 bytes from');
    expect(t.link.stats.rxPackets).toBeGreaterThanOrEqual(3); // 4028 bytes in 1500-byte fragments
    expect(t.link.stats.txPackets).toBe(t.link.stats.rxPackets);
  });

  it('writes a batch of 100 packets with one send(); the kernel receives all of them', async () => {
    const t = await createNetnsTun();
    const port = 40_000;
    // A UDP receiver inside the namespace: prints "ready", then the count it got.
    const receiver = t.spawn(
      [
        process.execPath,
        '-e',
        `const s = require('dgram').createSocket('udp4'); let n = 0;
         s.on('message', () => { if (++n === 100) { console.log('got ' + n); process.exit(0); } });
         s.bind(${port}, '${t.hostAddr}', () => console.log('ready'));
         setTimeout(() => { console.log('got ' + n); process.exit(0); }, 10000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    const exited = new Promise<void>((resolve) => receiver.on('close', () => resolve()));
    await new Promise<void>((resolve) => {
      receiver.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('ready')) resolve();
      });
      receiver.on('close', () => resolve());
    });
    const packets = Array.from({ length: 100 }, (_, i) =>
      udpPacket(t.stackAddr, t.hostAddr, 12345, port, new TextEncoder().encode(`datagram ${i}`)),
    );
    t.link.send(packets);
    await exited;
    expect(out).toContain('got 100');
    expect(t.link.stats.txPackets).toBe(100);
    expect(t.link.stats.txDrops).toBe(0);
  });

  it('records a pcap of both directions that tcpdump reads', async () => {
    const t = await createNetnsTun();
    const file = join(dir, 'reflector.pcap');
    const pcap = PcapWriter.open(file);
    reflector(wrapLink(t.link, pcap));
    const r = await t.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', '-n', t.stackAddr]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    pcap.close();
    const dump = spawnSync('tcpdump', ['-n', '-r', file, 'icmp'], { encoding: 'utf8', timeout: 10_000 });
    expect(dump.status, dump.stderr).toBe(0);
    expect(dump.stdout).toMatch(new RegExp(`${t.hostAddr} > ${t.stackAddr}: ICMP echo request`));
    expect(dump.stdout).toMatch(new RegExp(`${t.stackAddr} > ${t.hostAddr}: ICMP echo reply`));
  });

  it('opens the device with a kernel queue of DEFAULT_TX_QUEUE_LEN packets (not TUN\'s 500)', async () => {
    const t = await createNetnsTun();
    const shown = await t.exec(['cat', `/sys/class/net/${t.dev}/tx_queue_len`]);
    expect(shown.stdout.trim()).toBe(String(DEFAULT_TX_QUEUE_LEN));
  });

  it('close() removes the interface, and is idempotent; send after close counts drops', async () => {
    const t = await createNetnsTun();
    expect((await t.exec(['ip', 'link', 'show', t.dev])).code).toBe(0);
    t.link.close();
    t.link.close();
    // The kernel unregisters the device as the last fd closes; give it a moment (bounded).
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = (await t.exec(['ip', 'link', 'show', t.dev])).code !== 0;
      if (!gone) await new Promise((r) => setTimeout(r, 20));
    }
    expect(gone).toBe(true);
    t.link.send([new Uint8Array(20)]);
    expect(t.link.stats.txDrops).toBe(1);
  });

  it('open() reports a taken name with code EBUSY, and a bad name with EINVAL', () => {
    // "lo" exists in every namespace and is not a TUN device.
    expect(() => TunLink.open({ name: 'lo' })).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect(() => TunLink.open({ name: 'x'.repeat(16) })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('a second open of a busy TUN name fails with EBUSY', async () => {
    const t = await createNetnsTun();
    // The device now lives in t.ns: open the same name there.
    const r = await nodeInNs(
      t,
      `try { TunLink.open({ name: '${t.dev}' }); console.log('opened'); }
       catch (e) { console.log('code ' + e.code); }`,
    );
    expect(r.stdout.trim(), r.stderr).toBe('code EBUSY');
  });

  it('an exception thrown by the receive handler is an uncaught exception, not swallowed', async () => {
    const ns = await createNetns();
    // Without a handler for it, the process dies loudly with the error.
    const crash = await nodeInNs(
      ns,
      `${deviceAndPoke}
       link.onReceive(() => { throw new Error('boom from the receive handler'); });
       await poke();
       setTimeout(() => { console.log('still alive'); process.exit(0); }, 5000);`,
    );
    expect(crash.code, crash.stdout).not.toBe(0);
    expect(crash.stderr).toContain('boom from the receive handler');
    expect(crash.stdout).not.toContain('still alive');
    // With process.on('uncaughtException') it is reported there, and reading goes on.
    const caught = await nodeInNs(
      ns,
      `${deviceAndPoke}
       let thrown = 0;
       process.on('uncaughtException', (e) => { console.log('caught: ' + e.message); });
       link.onReceive((packets) => {
         if (thrown++ === 0) throw new Error('first batch');
         console.log('second batch: ' + packets.length);
         link.close();
       });
       await poke();
       await new Promise((r) => setTimeout(r, 100));
       await poke();`,
    );
    expect(caught.code, caught.stderr).toBe(0);
    expect(caught.stdout).toContain('caught: first batch');
    expect(caught.stdout).toContain('second batch: 1');
  });

  it('a TunLink dropped without close() is released by the garbage collector', async () => {
    const ns = await createNetns();
    const r = await nodeInNs(
      ns,
      `const { existsSync } = await import('node:fs');
       let link = TunLink.open({ name: 'gc0' });
       console.log('before: ' + existsSync('/sys/class/net/gc0'));
       link = undefined;
       let gone = false;
       for (let i = 0; i < 100 && !gone; i++) {
         globalThis.gc();
         await new Promise((r) => setTimeout(r, 10));
         gone = !existsSync('/sys/class/net/gc0');
       }
       console.log('after: ' + !gone);`,
      ['--expose-gc'],
    );
    expect(r.stdout, r.stderr).toBe('before: true\nafter: false\n');
  });
});

describeInterop('Stack answers ping from the kernel', () => {
  function startStack(t: NetnsTun, link: Link = t.link): Stack {
    return new Stack({ link, addr: parseIpv4(t.stackAddr)! });
  }

  it('ping -c 3 -i 0.2 gets 3 replies', async () => {
    const t = await createNetnsTun();
    const stack = startStack(t);
    const r = await t.exec(['ping', '-c', '3', '-i', '0.2', '-W', '2', '-n', t.stackAddr]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(pingReceived(r.stdout)).toBe(3);
    expect(r.stdout).toMatch(/64 bytes from .* icmp_seq=3 ttl=\d+/);
    expect(stack.stats()['stack.packets.out']).toBeGreaterThanOrEqual(3);
    stack.close();
  });

  it('ping -s 4000 (fragmented by the kernel) gets its reply', async () => {
    const t = await createNetnsTun();
    const stack = startStack(t);
    const r = await t.exec(['ping', '-c', '1', '-s', '4000', '-W', '2', '-n', t.stackAddr]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('4008 bytes from');
    expect(t.link.stats.rxPackets).toBeGreaterThanOrEqual(3); // the request came in fragments
    expect(t.link.stats.txPackets).toBeGreaterThanOrEqual(3); // and so did the reply
    stack.close();
  });

  it('a pcap written during the test opens with tcpdump -r and holds request and reply', async () => {
    const t = await createNetnsTun();
    const file = join(dir, 'stack.pcap');
    const pcap = PcapWriter.open(file);
    const stack = startStack(t, wrapLink(t.link, pcap));
    const r = await t.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', '-n', t.stackAddr]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    stack.close();
    pcap.close();
    const dump = spawnSync('tcpdump', ['-n', '-r', file], { encoding: 'utf8', timeout: 10_000 });
    expect(dump.status, dump.stderr).toBe(0);
    expect(dump.stderr).toContain('link-type RAW');
    expect(dump.stdout).toMatch(new RegExp(`${t.hostAddr} > ${t.stackAddr}: ICMP echo request, id \\d+, seq 1`));
    expect(dump.stdout).toMatch(new RegExp(`${t.stackAddr} > ${t.hostAddr}: ICMP echo reply, id \\d+, seq 1`));
    expect(dump.stdout).toMatch(new RegExp(`${t.stackAddr} > ${t.hostAddr}: ICMP echo reply, id \\d+, seq 2`));
  });
});
