/**
 * Offload against the Linux kernel: the TUN opened with IFF_VNET_HDR and TSO/CSUM offloads, large
 * transfers both ways (sha256 on both sides), and the wire the kernel makes of our super-segments.
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect, it, onTestFinished } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { Stack } from '../../src/stack.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { kernelClient } from '../helpers/kernel-peer.js';
import type { NetnsTun } from '../helpers/netns.js';
import { createNetnsTun, describeInterop } from '../helpers/netns.js';

const MB = 1 << 20;
/** The issue asks for 1 GiB each way; `npm run bench` moves that much. Here 256 MiB keeps CI fast. */
const BULK = Number(process.env['NETSTACK_OFFLOAD_BULK_MB'] ?? 256) * MB;

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
});
