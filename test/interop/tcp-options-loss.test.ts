/**
 * TCP options and loss recovery against the Linux kernel (RFC 7323 timestamps and window
 * scaling, RFC 2018 SACK): tcpdump in the namespace shows what both SYNs carried, and with 2 %
 * random loss in both directions 50 MB go each way intact, both senders repairing losses with
 * SACK. The kernel here has no netem. Packets to the kernel are dropped by iptables `statistic`
 * on the TUN inside the namespace; packets from the kernel are dropped in front of our stack
 * (`DropIncoming`, seeded), because a locally generated packet dropped in the kernel's OUTPUT
 * chain (or its qdisc) is not lost: TCP sees the error and sends it again at once. Timing is never asserted; throughput is printed for information.
 */
import { createHash } from 'node:crypto';
import { expect, it, onTestFinished } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import type { Link, PacketBatchHandler } from '../../src/link/link.js';
import { seededRandom } from '../../src/runtime/random.js';
import { Stack } from '../../src/stack.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { kernelClient, kernelServer, waitFor } from '../helpers/kernel-peer.js';
import type { NetnsTun } from '../helpers/netns.js';
import { createNetnsTun, describeInterop, runOk } from '../helpers/netns.js';

const MB = 1 << 20;
const SIZE = 50 * MB;

function startStack(t: NetnsTun, link: Link = t.link): Stack {
  const stack = new Stack({ link, addr: parseIpv4(t.stackAddr)! });
  onTestFinished(() => stack.close());
  return stack;
}

/** tcpdump on the namespace's interface with `args` (count, filter), started and ready; the
 *  returned function waits for it to finish and gives its output. */
async function capture(t: NetnsTun, args: string[]): Promise<() => Promise<string>> {
  const p = t.spawn(['tcpdump', '-n', '-l', '-i', t.dev, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => p.on('exit', () => resolve()));
  const kill = setTimeout(() => p.kill('SIGKILL'), 120_000);
  onTestFinished(() => {
    clearTimeout(kill);
    if (p.exitCode === null) p.kill('SIGKILL');
  });
  expect(await waitFor(() => err.includes('listening on'), 10_000)).toBe(true);
  return async () => {
    await exited;
    clearTimeout(kill);
    return out;
  };
}

/** tcpdump of the first two SYN segments on the namespace's interface. */
function captureSyns(t: NetnsTun): Promise<() => Promise<string>> {
  return capture(t, ['-c', '2', 'tcp[tcpflags] & tcp-syn != 0']);
}

/** Both SYN lines carry sackOK, TS and wscale (tcpdump's "[S]" and "[S.]"). */
function expectOptionsBothWays(dump: string): void {
  const lines = dump.trim().split('\n');
  expect(lines.length, dump).toBe(2);
  expect(lines[0]).toMatch(/Flags \[S\]/);
  expect(lines[1]).toMatch(/Flags \[S\.\]/);
  for (const line of lines) {
    expect(line).toMatch(/sackOK/);
    expect(line).toMatch(/TS val \d+ ecr \d+/);
    expect(line).toMatch(/wscale \d+/);
  }
  // The SYN-ACK echoes the SYN's timestamp.
  const synTs = /TS val (\d+)/.exec(lines[0]!)![1];
  expect(lines[1]).toMatch(new RegExp(`ecr ${synTs}\\b`));
}

/**
 * Drop each packet the kernel receives on the namespace's interface with probability `p`
 * (iptables `statistic` in its INPUT chain). The kernel's segmentation offloads are turned off
 * first, so its own packets are MSS-sized, as on the wire.
 */
async function kernelInputLoss(t: NetnsTun, p: number): Promise<void> {
  await runOk(['ip', 'netns', 'exec', t.ns, 'ethtool', '-K', t.dev, 'tso', 'off', 'gso', 'off']);
  await runOk(['ip', 'netns', 'exec', t.ns, 'iptables', '-A', 'INPUT', '-i', t.dev, '-m', 'statistic', '--mode', 'random', '--probability', String(p), '-j', 'DROP']);
}

/** A link that loses each incoming packet with probability `p` (seeded) before the stack sees it. */
class DropIncoming implements Link {
  dropped = 0;
  private readonly random: () => number;
  constructor(
    private readonly inner: Link,
    private readonly p: number,
    seed: number,
  ) {
    this.random = seededRandom(seed);
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  onReceive(handler: PacketBatchHandler): void {
    this.inner.onReceive((packets) => {
      const kept = packets.filter(() => this.random() >= this.p);
      this.dropped += packets.length - kept.length;
      if (kept.length > 0) handler(kept);
    });
  }
  send(packets: Uint8Array[]): void {
    this.inner.send(packets);
  }
  close(): void {
    this.inner.close();
  }
}

/**
 * tcpdump of the first `count` ACKs from `src` that carry SACK blocks: during a one-way transfer
 * the receiver sends no data, and its pure ACKs are 52 bytes (IP + TCP + timestamps), 64 and more
 * with SACK blocks. (The evidence of SACK in use: this machine's `ss -ti` prints no "ts"/"sack"
 * flags even between two kernel sockets.)
 */
function captureSackAcks(t: NetnsTun, src: string, count: number): Promise<() => Promise<string>> {
  return capture(t, ['-c', String(count), `src host ${src} and tcp[tcpflags] & tcp-syn == 0 and greater 60`]);
}

describeInterop('TCP options and loss recovery against the Linux kernel', () => {
  it('a kernel client and netstack agree on sackOK, timestamps and window scaling (tcpdump of both SYNs)', async () => {
    const t = await createNetnsTun();
    const stack = startStack(t);
    stack.createServer((s) => s.resume()).listen(80);
    const dump = await captureSyns(t);
    const r = await kernelClient(t, { host: t.stackAddr, port: 80, send: 100_000 });
    expect(r.sent).toBe(100_000);
    expectOptionsBothWays(await dump());
  });

  it('netstack connecting to a kernel server: the same options agreed the other way round', async () => {
    const t = await createNetnsTun();
    const stack = startStack(t);
    const server = await kernelServer(t, { host: t.hostAddr, port: 9000, send: 100_000 });
    const dump = await captureSyns(t);
    const c = stack.connect({ host: t.hostAddr, port: 9000 });
    let got = 0;
    c.on('data', (d: Buffer) => (got += d.length));
    c.on('connect', () => c.end(Buffer.alloc(1000, 1)));
    const k = await server.done;
    expect(k.received).toBe(1000);
    expect(await waitFor(() => got === 100_000, 10_000)).toBe(true);
    expectOptionsBothWays(await dump());
  });

  it('with 2% random loss both ways, 50 MB download and 50 MB upload arrive intact, both senders recovering with SACK', async () => {
    const t = await createNetnsTun();
    const lossy = new DropIncoming(t.link, 0.02, 17);
    const stack = startStack(t, lossy);
    await kernelInputLoss(t, 0.02);
    // Download: netstack sends 50 MB (random, hashed here) to a kernel client.
    const data = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4) data.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
    const sent = createHash('sha256').update(data).digest('hex');
    stack.createServer((s: TcpSocket) => s.end(data)).listen(80);
    const kernelSacks = await captureSackAcks(t, t.hostAddr, 3);
    const download = kernelClient(t, { host: t.stackAddr, port: 80, send: 0, timeoutS: 60 });
    // Our side: timestamps and SACK agreed on the connection.
    expect(await waitFor(() => stack.tcp.connectionList().length === 1, 10_000)).toBe(true);
    const ours = stack.tcp.connectionList()[0]!;
    expect([ours.ts?.enabled, ours.sackOk]).toEqual([true, true]);
    const d = await download;
    console.log(`[tcp] 50 MB download at 2% loss: ${d.seconds.toFixed(1)} s, ${((SIZE * 8) / d.seconds / 1e6).toFixed(0)} Mbit/s (contended machine: information only)`);
    expect(d.received).toBe(SIZE);
    expect(d.receivedSha256).toBe(sent);

    // Upload: the kernel sends 50 MB to netstack, which hashes what arrives.
    const h = createHash('sha256');
    let n = 0;
    stack.createServer((s: TcpSocket) => {
      s.on('data', (b: Buffer) => {
        h.update(b);
        n += b.length;
      });
      s.on('end', () => s.end());
    }).listen(81);
    const ourSacks = await captureSackAcks(t, t.stackAddr, 3);
    const u = await kernelClient(t, { host: t.stackAddr, port: 81, send: SIZE, timeoutS: 60 });
    console.log(`[tcp] 50 MB upload at 2% loss: ${u.seconds.toFixed(1)} s, ${((SIZE * 8) / u.seconds / 1e6).toFixed(0)} Mbit/s`);
    expect(u.sent).toBe(SIZE);
    expect(await waitFor(() => n === SIZE, 20_000)).toBe(true);
    expect(h.digest('hex')).toBe(u.sentSha256);

    // Loss really happened both ways, and each side repaired it with SACK: our sender entered
    // SACK recovery (from the kernel's SACK blocks), the kernel's scoreboard held SACKed segments.
    const st = stack.stats();
    expect(st['tcp.retransmit']).toBeGreaterThan(0);
    expect(st['tcp.sack.recovery']).toBeGreaterThan(0);
    expect(lossy.dropped).toBeGreaterThan(100); // the kernel's packets were lost too
    // Both receivers' ACKs carried SACK blocks (and timestamps) on the wire.
    for (const dump of [await kernelSacks(), await ourSacks()]) {
      const lines = dump.trim().split('\n');
      expect(lines.length, dump).toBe(3);
      for (const line of lines) expect(line).toMatch(/TS val \d+ ecr \d+.*sack \d+ \{/);
    }
    console.log(`[tcp] netstack: ${st['tcp.retransmit']} retransmissions, ${st['tcp.sack.recovery']} SACK recoveries, ${st['tcp.tlp.probe'] ?? 0} tail loss probes, ${st['tcp.rto'] ?? 0} RTOs`);
  }, 240_000);
});
