/**
 * Offload against the Linux kernel: the TUN opened with IFF_VNET_HDR and TSO/CSUM offloads, large
 * transfers both ways (sha256 on both sides), and the wire the kernel makes of our super-segments.
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect, it, onTestFinished } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { Stack } from '../../src/stack.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { kernelClient, kernelPython } from '../helpers/kernel-peer.js';
import type { NetnsTun } from '../helpers/netns.js';
import { createNetns, createNetnsTun, describeInterop, run, runOk } from '../helpers/netns.js';

const MB = 1 << 20;
/** 1 GiB each way, as much as `npm run bench` moves (some 10 s in all); NETSTACK_OFFLOAD_BULK_MB sets less for a quick look. */
const BULK = Number(process.env['NETSTACK_OFFLOAD_BULK_MB'] ?? 1024) * MB;

function startStack(t: NetnsTun): Stack {
  const stack = new Stack({ link: t.link, addr: parseIpv4(t.stackAddr)! });
  onTestFinished(() => stack.close());
  return stack;
}

describeInterop('TCP with virtio-net offloads on the TUN', () => {
  it('the kernel accepts the offloads: the link has them on', async () => {
    const t = await createNetnsTun({ offload: true });
    expect(t.link.offloadError).toBeUndefined();
    expect(t.link.offload).toBe(true);
    const stack = startStack(t);
    expect(stack.offload).toBe(true);
  });

  it('UDP from the host arrives with a partial checksum (NEEDS_CSUM): completed, verified and answered', async () => {
    const t = await createNetnsTun({ offload: true });
    const stack = startStack(t);
    const sock = stack.udp.createSocket('udp4');
    sock.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => sock.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
    await new Promise<void>((resolve) => sock.bind(7, resolve));
    onTestFinished(() => void sock.close());
    const code = [
      'import socket',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      's.settimeout(5)',
      `s.sendto(b'x' * 1000, ('${t.stackAddr}', 7))`,
      'print(s.recvfrom(2048)[0][:9].decode())',
    ].join('\n');
    const r = await kernelPython(t, code);
    expect(r.stdout.trim()).toBe('echo:xxxx');
    const st = stack.stats();
    expect(st['udp.delivered']).toBe(1);
    // The kernel left the checksum to us (TUN_F_CSUM): we completed it before UDP verified it.
    expect(st['link.offload.csum.completed']).toBe(1);
  });

  it(`upload: the kernel sends ${BULK / MB} MiB, every byte arrives (sha256), as super-segments`, async () => {
    const t = await createNetnsTun({ offload: true });
    const stack = startStack(t);
    const hash = createHash('sha256');
    let received = 0;
    stack.createServer((s: TcpSocket) => {
      s.on('data', (d: Buffer) => {
        hash.update(d);
        received += d.length;
      });
      s.on('end', () => s.end());
    }).listen(9);
    const r = await kernelClient(t, { host: t.stackAddr, port: 9, send: BULK, timeoutS: 60 });
    expect(r.sent).toBe(BULK);
    expect(received).toBe(BULK);
    expect(hash.digest('hex')).toBe(r.sentSha256);
    const st = stack.stats();
    console.log(`[offload] upload ${BULK / MB} MiB in ${r.seconds.toFixed(2)} s; gso in ${st['link.offload.gso.in']}, csum trusted ${st['link.offload.csum.trusted']}, tun ${JSON.stringify(t.link.stats)}`);
    expect(st['link.offload.gso.in']).toBeGreaterThan(0);
    expect(st['tcp.drop.bad-checksum'] ?? 0).toBe(0);
  }, 120_000);

  it(`download: we send ${BULK / MB} MiB as super-segments, the kernel gets every byte (sha256)`, async () => {
    const t = await createNetnsTun({ offload: true });
    const stack = startStack(t);
    const data = randomBytes(BULK);
    const sent = createHash('sha256').update(data).digest('hex');
    stack.createServer((s: TcpSocket) => {
      s.on('data', () => {});
      s.end(data);
    }).listen(9);
    const r = await kernelClient(t, { host: t.stackAddr, port: 9, send: 0, timeoutS: 60 });
    expect(r.received).toBe(BULK);
    expect(r.receivedSha256).toBe(sent);
    const st = stack.stats();
    console.log(`[offload] download ${BULK / MB} MiB in ${r.seconds.toFixed(2)} s; gso out ${st['tcp.out.gso']}, tun ${JSON.stringify(t.link.stats)}`);
    expect(st['tcp.out.gso']).toBeGreaterThan(0);
    expect(t.link.stats.txGso).toBeGreaterThan(0);
  }, 120_000);

  /*
   * On the wire. Delivered locally, the kernel takes our super-segments whole (as it takes GRO'd
   * packets), so tcpdump on the TUN shows 64 KiB packets. To see what a wire sees, the kernel here
   * forwards them to a veth whose TSO, GSO and checksum offload are off: it must cut them at
   * gso_size and complete their checksums itself (skb_gso_segment), and a peer in a second
   * namespace receives them. tcpdump -vv there checks every TCP checksum.
   *
   *   stack ── TUN ══ ns A (forwarding) ── vethA (offloads off) ══ vethB ── ns B: the kernel peer
   */
  it('forwarded to a wire without offloads, our super-segments become MSS-sized segments with correct checksums (tcpdump)', async () => {
    const t = await createNetnsTun({ offload: true });
    const b = await createNetns();
    const stack = startStack(t);
    const [va, vb] = [`va${process.pid.toString(36)}`, `vb${process.pid.toString(36)}`];
    await runOk(['ip', '-n', t.ns, 'link', 'add', va, 'type', 'veth', 'peer', 'name', vb, 'netns', b.ns]);
    await runOk(['ip', '-n', t.ns, 'addr', 'add', '10.250.0.1/30', 'dev', va]);
    await runOk(['ip', '-n', b.ns, 'addr', 'add', '10.250.0.2/30', 'dev', vb]);
    await runOk(['ip', '-n', t.ns, 'link', 'set', va, 'up']);
    await runOk(['ip', '-n', b.ns, 'link', 'set', vb, 'up']);
    await runOk(['ip', '-n', b.ns, 'route', 'add', `${t.stackAddr}/32`, 'via', '10.250.0.1']);
    await runOk(['ip', 'netns', 'exec', t.ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await runOk(['ip', 'netns', 'exec', t.ns, 'ethtool', '-K', va, 'tso', 'off', 'gso', 'off', 'tx', 'off']);
    const pcap = `/tmp/netstack-offload-${process.pid}.pcap`;
    onTestFinished(() => void run(['rm', '-f', pcap]));
    const data = randomBytes(4 * MB);
    stack.createServer((s: TcpSocket) => {
      s.on('data', () => {});
      s.end(data);
    }).listen(9);
    // Route back to B's address: the stack's only link is the TUN, so every destination is on it.
    const dump = b.spawn(['tcpdump', '-i', vb, '-nn', '-U', '-s', '0', '-c', '2000', '-w', pcap, 'tcp', 'and', 'src', 'host', t.stackAddr], { stdio: 'ignore' });
    onTestFinished(() => void dump.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 1000)); // tcpdump attaches
    const r = await kernelClient(b, { host: t.stackAddr, port: 9, send: 0, timeoutS: 30 });
    expect(r.receivedSha256).toBe(createHash('sha256').update(data).digest('hex'));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => (dump.kill('SIGINT'), resolve()), 3000);
      dump.once('exit', () => (clearTimeout(timer), resolve()));
    });
    expect(stack.stats()['tcp.out.gso']).toBeGreaterThan(10);
    const read = await runOk(['tcpdump', '-r', pcap, '-nn', '-vv']);
    // One line per packet ("IP (tos ..., length N)"), then the TCP line with "cksum 0x... (correct)".
    const lengths = [...read.stdout.matchAll(/proto TCP \(6\), length (\d+)\)/g)].map((m) => Number(m[1]));
    const checks = [...read.stdout.matchAll(/cksum 0x[0-9a-f]+ \((correct|incorrect[^)]*)\)/g)].map((m) => m[1]);
    expect(lengths.length).toBeGreaterThan(1000);
    expect(checks.length).toBe(lengths.length);
    expect(checks.filter((c) => c !== 'correct')).toEqual([]);
    expect(Math.max(...lengths)).toBe(1500); // full-sized: 20 IP + 32 TCP (timestamps) + 1448
    expect(lengths.filter((l) => l > 1500)).toEqual([]);
    const full = lengths.filter((l) => l === 1500).length;
    expect(full / lengths.length).toBeGreaterThan(0.9);
  }, 90_000);
});
