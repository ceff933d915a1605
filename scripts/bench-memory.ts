/**
 * Workload 5, "in-memory": two netstack instances joined by a MemoryLink, no kernel and
 * no device. One connection carries `bytes` one way, MTU 1500, with every IPv4 and TCP
 * checksum computed and verified as on a real link. The time is the stack's own cost:
 * segmentation, checksums, ACK processing, the socket streams.
 *
 *   node bench-memory.js <bytes> [mtu] [offload]   (started by bench.ts, NETSTACK_DIST set)
 *
 * offload "on": both endpoints emulate a TUN with virtio-net offloads (src/link/memory.ts), so
 * TCP moves 64 KiB super-segments with partial checksums between the two stacks, as it does with
 * the kernel (workload memory_offload); "off" (default): one MSS per packet, every checksum computed.
 *
 * Prints one JSON line: { bytes, seconds, gbps, retransmits, packets }.
 */
import type * as AddrModule from '../src/ip/addr.js';
import type * as MemoryModule from '../src/link/memory.js';
import type * as ClockModule from '../src/runtime/clock.js';
import type * as StackModule from '../src/stack.js';
import { importDist, report, writeRepeated } from './bench-dist.js';

const { Stack } = await importDist<typeof StackModule>('stack.js');
const { MemoryLink } = await importDist<typeof MemoryModule>('link/memory.js');
const { RealClock } = await importDist<typeof ClockModule>('runtime/clock.js');
const { parseIpv4 } = await importDist<typeof AddrModule>('ip/addr.js');

const total = Number(process.argv[2] ?? 1 << 30);
const mtu = Number(process.argv[3] ?? 1500);
const offload = process.argv[4] === 'on';
if (!Number.isSafeInteger(total) || total <= 0 || !Number.isInteger(mtu) || mtu < 576) {
  throw new Error('usage: bench-memory <bytes> [mtu]');
}

const clock = new RealClock();
const [linkA, linkB] = MemoryLink.pair(clock, mtu, { offload });
const client = new Stack({ link: linkA, addr: parseIpv4('10.0.0.1')!, clock, name: 'client' });
const server = new Stack({ link: linkB, addr: parseIpv4('10.0.0.2')!, clock, name: 'server' });

// Give up after a minute: a stalled connection must not hang the bench.
const watchdog = setTimeout(() => {
  report({ error: `stalled: ${received} of ${total} bytes after 60 s` });
  process.exit(1);
}, 60_000);

let received = 0;
let start = 0;
server
  .createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.on('end', () => {
      const seconds = (performance.now() - start) / 1000;
      clearTimeout(watchdog);
      const stats = { ...client.stats(), ...server.stats() };
      if (received !== total) {
        report({ error: `received ${received} bytes, expected ${total}` });
        process.exit(1);
      }
      report({
        bytes: total,
        seconds,
        gbps: (total * 8) / seconds / 1e9,
        retransmits: client.stats()['tcp.retransmit'] ?? 0,
        packets: linkA.sent + linkB.sent,
        drops: Object.fromEntries(Object.entries(stats).filter(([k, v]) => k.includes('.drop.') && v > 0)),
      });
      process.exit(0);
    });
  })
  .listen(80);

// One reusable 64 KiB chunk: the bytes' content does not matter here, only their count.
const chunk = Buffer.alloc(64 * 1024, 0x5a);
const socket = client.connect({ host: '10.0.0.2', port: 80 });
socket.on('connect', () => {
  start = performance.now();
  writeRepeated(socket, chunk, total, () => socket.end());
});
socket.on('error', (err) => {
  report({ error: `client socket: ${err.message}` });
  process.exit(1);
});
