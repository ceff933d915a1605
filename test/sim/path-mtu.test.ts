/**
 * Path MTU discovery (RFC 1191) between two stacks: a router in the middle forwards at most
 * ROUTER_MTU bytes, drops bigger packets (all of ours carry DF) and answers each with ICMP
 * fragmentation-needed, as a real router does. Seeded loss and delay both ways.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 as parseAddr } from '../../src/ip/addr.js';
import { ICMP_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED } from '../../src/ip/icmp.js';
import { IPV4_HEADER_LEN, PROTO_ICMP } from '../../src/ip/ipv4.js';
import type { Stack } from '../../src/stack.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import { icmp, ipv4 } from '../helpers/wire.js';

const ROUTER = parseAddr('10.0.0.254')!;
const ROUTER_MTU = 1000;

/** Put the router on the link out of `from`: big packets go back to `from` as ICMP errors. */
function router(link: { send(packets: Uint8Array[]): void }, from: Stack, defer: (fn: () => void) => void): { dropped: number } {
  const stats = { dropped: 0 };
  const forward = link.send.bind(link);
  link.send = (packets: Uint8Array[]) => {
    const fits = packets.filter((p) => p.length <= ROUTER_MTU);
    for (const p of packets) {
      if (p.length <= ROUTER_MTU) continue;
      stats.dropped++;
      // RFC 792: the offending header and the first 8 bytes of its data; RFC 1191 §4: the next-hop MTU.
      const quote = p.subarray(0, IPV4_HEADER_LEN + 8);
      const error = ipv4({ src: ROUTER, dst: from.addr, protocol: PROTO_ICMP }, icmp({ type: ICMP_DEST_UNREACHABLE, code: UNREACH_FRAG_NEEDED, restOfHeader: ROUTER_MTU }, quote));
      defer(() => from.receive([error]));
    }
    if (fits.length > 0) forward(fits);
  };
  return stats;
}

describe('path MTU discovery (RFC 1191)', () => {
  it('[icmp.pmtu-sim] through a router with a smaller MTU, both directions learn it from ICMP and 1 MB each way arrives intact; later segments fit', async () => {
    for (const seed of [1, 2, 3]) {
      const sim = createSim({ seed, aToB: { delayMs: 5, loss: 0.01 }, bToA: { delayMs: 5, loss: 0.01 } });
      const { clock, a, b } = sim;
      const defer = (fn: () => void) => clock.defer(fn);
      const aRouter = router(sim.aOut!, a, defer);
      const bRouter = router(sim.bOut!, b, defer);
      const toB = randomBytes(1 << 20, seed);
      const toA = randomBytes(1 << 20, seed + 100);
      const gotB: Buffer[] = [];
      const gotA: Buffer[] = [];
      b.createServer((s: TcpSocket) => {
        s.on('data', (d: Buffer) => gotB.push(d));
        s.end(toA);
      }).listen(80);
      const c = a.connect({ host: B_ADDR, port: 80 });
      c.on('data', (d: Buffer) => gotA.push(d));
      c.end(toB);
      // Each side's send MSS as last seen: a fast transfer may be over (and its connection gone) by 2 s.
      const seen: Array<number | undefined> = [undefined, undefined];
      for (let t = 0; t < 2000; t += 10) {
        [a, b].forEach((s, i) => (seen[i] = s.tcp.connectionList()[0]?.snd.mss ?? seen[i]));
        await clock.sleep(10);
      }
      // The path's MSS less the 12 bytes of the timestamps option every segment carries (RFC 6691).
      expect(seen, `seed ${seed}`).toEqual([ROUTER_MTU - 40 - 12, ROUTER_MTU - 40 - 12]);
      const droppedEarly = aRouter.dropped + bRouter.dropped;
      expect(aRouter.dropped > 0 && bRouter.dropped > 0, `seed ${seed}: the router refused big packets both ways`).toBe(true);
      for (let i = 0; i < 600 && Buffer.concat(gotB).length + Buffer.concat(gotA).length < 2 << 20; i++) await clock.sleep(100);
      expect(Buffer.concat(gotB).equals(toB), `seed ${seed}: A -> B intact`).toBe(true);
      expect(Buffer.concat(gotA).equals(toA), `seed ${seed}: B -> A intact`).toBe(true);
      // Once learnt, nothing more is too big for the router.
      expect(aRouter.dropped + bRouter.dropped, `seed ${seed}`).toBe(droppedEarly);
      expect(a.stats()['tcp.pmtu.lowered'], `seed ${seed}`).toBeGreaterThanOrEqual(1);
      expect(b.stats()['tcp.pmtu.lowered'], `seed ${seed}`).toBeGreaterThanOrEqual(1);
    }
  });
});
