/**
 * Flow control between two stacks on the virtual clock: the receiver's window (RFC 9293 §3.8.6),
 * zero-window probing (§3.8.6.1, RFC 1122 §4.2.2.17) and receiver SWS avoidance (RFC 1122
 * §4.2.3.3). A tap on both links sees every segment as it is sent.
 */
import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim, randomBytes } from '../helpers/sim.js';
import type { Sim, SimOptions } from '../helpers/sim.js';
import { parseIpv4 } from '../../src/ip/ipv4.js';
import type { FaultyLink } from '../../src/link/faulty.js';
import type { TcpSegment } from '../../src/tcp/segment.js';
import { FIN, SYN, parseTcp } from '../../src/tcp/segment.js';
import { seqAdd, seqGt, seqLeq } from '../../src/tcp/seq.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { TcpState } from '../../src/tcp/state.js';

const RTT = 10; // 5 ms each way

/**
 * Watches A -> B data against the window B advertised. B never shrinks its window, so the
 * highest right edge (ACK + window) B has sent so far bounds everything A may send.
 */
class WindowWatch {
  /** Right edge of B's window: the highest SEG.ACK + SEG.WND B has sent. */
  rightEdge: number | undefined;
  /** B's window scale (from its SYN-ACK). */
  private wscale = 0;
  /** Every right-edge change B announced: [time, edge, window]. */
  readonly edges: Array<{ t: number; edge: number; window: number }> = [];
  /** Times of A's zero-window probes (one byte at the right edge of a zero window). */
  readonly probes: number[] = [];
  /** A's data segments that went beyond B's window (must stay empty). */
  readonly violations: string[] = [];
  /** Times B received new (non-probe) data from A. */
  readonly dataAt: number[] = [];
  zeroWindowSeen = false;

  constructor(private readonly sim: Sim) {
    tap(sim.aOut!, (seg) => this.fromA(seg));
    tap(sim.bOut!, (seg) => this.fromB(seg));
  }

  private fromB(seg: TcpSegment): void {
    if (seg.flags & SYN) this.wscale = seg.options.wscale ?? 0;
    if (seg.flags & SYN || !(seg.flags & 0x10)) return; // window in a SYN-ACK is unscaled and says little
    const window = seg.window << this.wscale;
    const edge = seqAdd(seg.ack, window);
    if (window === 0) this.zeroWindowSeen = true;
    if (this.rightEdge === undefined || seqGt(edge, this.rightEdge)) {
      this.rightEdge = edge;
      this.edges.push({ t: this.sim.clock.now(), edge, window });
    }
  }

  private fromA(seg: TcpSegment): void {
    const len = seg.payload.length;
    if (len === 0 || this.rightEdge === undefined) return;
    // RFC 9293 §3.8.6.1: a zero-window probe carries one byte past a window A sees closed.
    if (len === 1 && this.sim.a.tcp.connectionList()[0]?.snd.wnd === 0) {
      this.probes.push(this.sim.clock.now());
      return;
    }
    const end = seqAdd(seg.seq, len);
    if (seqLeq(end, this.rightEdge)) {
      this.dataAt.push(this.sim.clock.now());
      return;
    }
    this.violations.push(`seq ${seg.seq} len ${len}${seg.flags & FIN ? ' FIN' : ''} beyond right edge ${this.rightEdge}`);
  }
}

/** Call `fn` with every TCP segment sent on `link`, as it is sent. */
function tap(link: FaultyLink, fn: (seg: TcpSegment) => void): void {
  const send = link.send.bind(link);
  link.send = (packets: Uint8Array[]) => {
    for (const p of packets) {
      const ip = parseIpv4(p);
      if ('error' in ip) continue;
      const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst);
      if (!('error' in seg)) fn(seg);
    }
    send(packets);
  };
}

interface Setup {
  sim: Sim;
  watch: WindowWatch;
  /** The server's (B's) socket once accepted; created paused. */
  server: () => TcpSocket;
  client: TcpSocket;
  errors: string[];
}

async function setup(opts: Omit<SimOptions, 'aToB' | 'bToA'>, serverOpts: { highWaterMark: number }): Promise<Setup> {
  const sim = createSim({ ...opts, aToB: { delayMs: RTT / 2 }, bToA: { delayMs: RTT / 2 } });
  const watch = new WindowWatch(sim);
  let accepted: TcpSocket | undefined;
  const errors: string[] = [];
  sim.b
    .createServer({ highWaterMark: serverOpts.highWaterMark }, (s: TcpSocket) => {
      s.pause();
      s.on('error', (e: Error & { code?: string }) => errors.push(`B ${e.code}`));
      accepted = s;
    })
    .listen(80);
  await sim.clock.sleep(1);
  const client = sim.a.connect({ host: B_ADDR, port: 80 });
  client.on('error', (e: Error & { code?: string }) => errors.push(`A ${e.code}`));
  await sim.clock.run(() => accepted === undefined, 1000);
  return {
    sim,
    watch,
    server: () => {
      if (!accepted) throw new Error('not accepted');
      return accepted;
    },
    client,
    errors,
  };
}

/** Read what the paused socket has buffered, up to `max` bytes. */
function take(s: TcpSocket, max: number): Buffer | null {
  const n = Math.min(max, s.readableLength);
  return n > 0 ? (s.read(n) as Buffer | null) : null;
}

describe('flow control (RFC 9293 §3.8.6)', () => {
  it('[flow.slow-reader] a slow reader is never sent more than its window: checked on every segment and at every instant', async () => {
    const rcvBuf = 32 * 1024;
    const { sim, watch, server, client, errors } = await setup({ seed: 11, tcpB: { rcvBuf } }, { highWaterMark: 4096 });
    const { clock, a, b } = sim;
    const size = 400_000;
    const data = randomBytes(size, 9);
    client.end(data);
    const got: Buffer[] = [];
    let received = 0;
    // The reader: 1000 bytes every 10 ms (100 kB/s), with a 4-second stall in the middle.
    const t0 = clock.now();
    const reader = (): void => {
      const t = clock.now() - t0;
      if (t < 1000 || t > 5000) {
        const d = take(server(), 1000);
        if (d) {
          got.push(d);
          received += d.length;
        }
      }
      if (received < size) clock.at(clock.now() + 10, reader);
    };
    reader();
    let checks = 0;
    const ok = await clock.run(() => {
      const bc = b.tcp.connectionList()[0];
      const ac = a.tcp.connectionList()[0];
      if (bc && ac && ac.state !== TcpState.SYN_SENT) {
        checks++;
        // The receiver never holds more than its buffer (give or take the window-scale rounding:
        // the window is rounded up to a multiple of 2^shift rather than shrunk)...
        expect(bc.rcvBuffered + bc.rcv.oooBytes).toBeLessThan(rcvBuf + (1 << bc.rcv.wscale));
        // ...and the sender never has more data outstanding than the window it was offered.
        const fin = ac.finSent && !ac.finAcked ? 1 : 0;
        expect(ac.snd.nxt - ac.snd.una - fin).toBeLessThanOrEqual(ac.snd.wnd);
      }
      return received < size;
    }, 120_000);
    expect(ok).toBe(true);
    expect(errors).toEqual([]);
    expect(Buffer.concat(got).equals(data)).toBe(true);
    expect(watch.violations).toEqual([]);
    // The limit was really reached: the window closed and was probed during the stall.
    expect(watch.zeroWindowSeen).toBe(true);
    expect(watch.probes.length).toBeGreaterThan(0);
    expect(checks).toBeGreaterThan(500);
  });

  it('[persist.long-zero-window] an hour of zero window: probes back off to the 120 s maximum, the connection survives, and resumes within one RTT of the read', async () => {
    const { sim, watch, server, client, errors } = await setup({ seed: 12, tcpB: { rcvBuf: 16 * 1024 } }, { highWaterMark: 1024 });
    const { clock, a } = sim;
    client.write(randomBytes(100_000, 1));
    await clock.sleep(3_600_000); // nobody reads for an hour
    expect(errors).toEqual([]);
    expect(a.connections()[0]!.state).toBe(TcpState.ESTABLISHED);
    // RFC 1122 §4.2.2.17: exponential backoff of the probe interval (from the 200 ms RTO), with a cap.
    const gaps = watch.probes.slice(1).map((t, i) => t - watch.probes[i]!);
    expect(gaps.length).toBeGreaterThan(a.tcp.config.maxRetries); // more probes than retransmissions allowed
    expect(gaps).toEqual(gaps.map((_, i) => Math.min(400 * 2 ** i, 120_000)));
    expect(a.stats()['tcp.persist.probe']).toBe(watch.probes.length);
    // The reader comes back: its window update reaches A, and new data reaches B one RTT later.
    const resumeAt = clock.now();
    const before = watch.dataAt.length;
    server().resume();
    await clock.run(() => watch.dataAt.length === before, 1000);
    expect(watch.dataAt[before]! - resumeAt).toBeLessThanOrEqual(RTT / 2 + 1); // A sends as soon as the update arrives
    let got = 0;
    server().on('data', (d: Buffer) => (got += d.length));
    await clock.run(() => got === 0, 1000);
    expect(clock.now() - resumeAt).toBeLessThanOrEqual(RTT + 1);
  });

  it('[persist.lost-update] a lost window update is found by the next probe', async () => {
    const { sim, watch, server, client } = await setup({ seed: 13, tcpB: { rcvBuf: 16 * 1024 } }, { highWaterMark: 1024 });
    const { clock } = sim;
    client.write(randomBytes(100_000, 2));
    await clock.sleep(10_000);
    const probesBefore = watch.probes.length;
    expect(probesBefore).toBeGreaterThan(0);
    const lastProbe = watch.probes[probesBefore - 1]!;
    const nextProbe = lastProbe + (watch.probes[probesBefore - 1]! - watch.probes[probesBefore - 2]!) * 2;
    // B reads, but its window update is lost.
    sim.bOut!.setOptions({ loss: 1 });
    const dataBefore = watch.dataAt.length;
    server().resume();
    await clock.sleep(1);
    sim.bOut!.setOptions({ loss: 0 });
    await clock.run(() => watch.dataAt.length === dataBefore, 60_000);
    // Nothing moved until the next probe; B took its byte into the open window, and the ACK of it
    // (delayed, like any ACK of one small segment) told A the window is open.
    expect(watch.probes.length).toBe(probesBefore + 1);
    expect(watch.probes[probesBefore]).toBe(nextProbe);
    expect(watch.dataAt[dataBefore]! - nextProbe).toBeLessThanOrEqual(RTT + sim.b.tcp.config.delayedAckMs + 1);
  });

  it('[persist.unanswered] probes that nobody answers end the connection with ETIMEDOUT after maxRetries of them', async () => {
    const { sim, watch, client, errors } = await setup({ seed: 14, tcpB: { rcvBuf: 16 * 1024 } }, { highWaterMark: 1024 });
    const { clock, a } = sim;
    client.write(randomBytes(100_000, 3));
    await clock.run(() => !watch.zeroWindowSeen, 10_000);
    sim.bOut!.setOptions({ loss: 1 }); // B vanishes behind its zero window
    const vanished = clock.now();
    await clock.run(() => errors.length === 0, 3_600_000);
    expect(errors).toEqual(['A ETIMEDOUT']);
    expect(watch.probes.length).toBe(a.tcp.config.maxRetries);
    // Not in a hurry: the backed-off probes span more than ten minutes.
    expect(clock.now() - vanished).toBeGreaterThan(600_000);
  });

  it('[sws.receiver] receiver SWS avoidance: a reader taking 100 bytes at a time never makes the right edge move by less than one MSS', async () => {
    const rcvBuf = 8192;
    // No window scaling on B, so advertised windows are exact byte counts.
    const { sim, watch, server, client } = await setup({ seed: 15, tcpB: { rcvBuf, wscale: 0 } }, { highWaterMark: 1 });
    const { clock } = sim;
    client.setNoDelay(true);
    // The sender writes 100-byte pieces every ms; the reader takes one piece every 2 ms.
    const size = 100 * 2000;
    let written = 0;
    const writer = (): void => {
      client.write(Buffer.alloc(100, written / 100));
      written += 100;
      if (written < size) clock.at(clock.now() + 1, writer);
    };
    writer();
    let received = 0;
    const reader = (): void => {
      const d = take(server(), 100);
      if (d) received += d.length;
      if (received < size) clock.at(clock.now() + 2, reader);
    };
    reader();
    const ok = await clock.run(() => received < size, 60_000);
    expect(ok).toBe(true);
    expect(watch.zeroWindowSeen || watch.edges.some((e) => e.window < rcvBuf / 2)).toBe(true);
    const mss = sim.b.tcp.connectionList()[0]!.rcv.mss;
    const steps = watch.edges.slice(1).map((e, i) => e.edge - watch.edges[i]!.edge);
    expect(steps.length).toBeGreaterThan(50);
    // RFC 1122 §4.2.3.3: the edge moves only by at least min(RCV.BUFF / 2, MSS).
    expect(steps.filter((s) => s < Math.min(rcvBuf / 2, mss))).toEqual([]);
  });
});
