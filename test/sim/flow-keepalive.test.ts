/**
 * TCP keepalive (RFC 1122 §4.2.3.6): off by default; when on, after `idle` ms without hearing
 * from the peer send a probe <SEQ=SND.NXT-1> with no data, every `interval` ms, and give up
 * with ETIMEDOUT after `count` unanswered probes.
 */
import { describe, expect, it } from 'vitest';
import { B_ADDR, createSim } from '../helpers/sim.js';
import type { Sim } from '../helpers/sim.js';
import { parseIpv4 } from '../../src/ip/ipv4.js';
import type { TcpConfig } from '../../src/tcp/config.js';
import { parseTcp } from '../../src/tcp/segment.js';
import type { TcpSegment } from '../../src/tcp/segment.js';
import { seqAdd } from '../../src/tcp/seq.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { TcpState } from '../../src/tcp/state.js';

/** A connection with a little data exchanged, then quiet. `sentByA` logs what A puts on the wire. */
async function idleConnection(tcpA: Partial<TcpConfig> = {}) {
  const sim: Sim = createSim({ seed: 31, aToB: { delayMs: 5 }, bToA: { delayMs: 5 }, tcpA });
  const { clock, a, b } = sim;
  const sentByA: Array<{ t: number; seg: TcpSegment }> = [];
  const send = sim.aOut!.send.bind(sim.aOut!);
  sim.aOut!.send = (packets: Uint8Array[]) => {
    for (const p of packets) {
      const ip = parseIpv4(p);
      if ('error' in ip) continue;
      const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst);
      if (!('error' in seg)) sentByA.push({ t: clock.now(), seg });
    }
    send(packets);
  };
  const errors: string[] = [];
  b.createServer((s: TcpSocket) => s.on('data', (d: Buffer) => s.write(d))).listen(80);
  await clock.sleep(1);
  const c = a.connect({ host: B_ADDR, port: 80 });
  c.on('error', (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
  c.on('data', () => {});
  c.write('hello');
  await clock.sleep(500); // echo and every ACK done: the connection is idle
  return { sim, c, errors, sentByA };
}

describe('keepalive (RFC 1122 §4.2.3.6)', () => {
  it('[keepalive.off-by-default] off by default: three idle hours, not one probe; turned on, the first probe comes after the default 2 h idle', async () => {
    const { sim, c, sentByA } = await idleConnection();
    const { clock, a } = sim;
    const before = sentByA.length;
    await clock.sleep(3 * 3_600_000);
    expect(sentByA.length).toBe(before);
    expect(a.stats()['tcp.keepalive.probe']).toBeUndefined();
    expect(a.connections()[0]!.state).toBe(TcpState.ESTABLISHED);
    const on = clock.now();
    c.setKeepAlive(true);
    await clock.run(() => (a.stats()['tcp.keepalive.probe'] ?? 0) === 0, 3 * 3_600_000);
    expect(clock.now() - on).toBe(7_200_000);
  });

  it('[keepalive.answered] a live peer answers every probe: one probe per idle period, for as long as it lasts', async () => {
    const { sim, c, errors, sentByA } = await idleConnection({ keepaliveInterval: 10_000, keepaliveCount: 3 });
    const { clock, a } = sim;
    const before = sentByA.length;
    const on = clock.now();
    c.setKeepAlive(true, 60_000);
    await clock.sleep(3_600_000);
    const probes = sentByA.slice(before);
    // The first probe after a minute of silence; each is answered one RTT (10 ms) later, and the
    // next idle minute counts from that answer: 1 + floor((3 600 000 - 60 000) / 60 010) = 59 probes.
    expect(probes[0]!.t - on).toBe(60_000);
    const gaps = probes.slice(1).map((p, i) => p.t - probes[i]!.t);
    expect(new Set(gaps)).toEqual(new Set([60_000 + 10]));
    expect(probes.length).toBe(59);
    expect(errors).toEqual([]);
    expect(a.connections()[0]!.state).toBe(TcpState.ESTABLISHED);
  });

  it('[keepalive.vanished] a vanished peer is detected: ETIMEDOUT exactly idle + count * interval after the last word from it', async () => {
    const idle = 5000;
    const interval = 1000;
    const count = 3;
    const { sim, c, errors, sentByA } = await idleConnection({ keepaliveInterval: interval, keepaliveCount: count });
    const { clock, a } = sim;
    const conn = a.tcp.connectionList()[0]!;
    const on = clock.now();
    c.setKeepAlive(true, idle);
    // The peer disappears (unplugged, rebooted without a RST...): nothing gets through any more.
    sim.aOut!.setOptions({ loss: 1 });
    sim.bOut!.setOptions({ loss: 1 });
    const before = sentByA.length;
    await clock.run(() => errors.length === 0, 3_600_000);
    expect(errors).toEqual(['ETIMEDOUT']);
    expect(clock.now() - on).toBe(idle + count * interval);
    expect(a.stats()['tcp.keepalive.probe']).toBe(count);
    expect(a.stats()['tcp.keepalive.timeout']).toBe(1);
    expect(c.destroyed).toBe(true);
    expect(a.connections()).toEqual([]);
    // Each probe: <SEQ=SND.NXT-1>, no data, ACK set; at idle, idle + interval, idle + 2*interval.
    const probes = sentByA.slice(before);
    expect(probes.map((p) => p.t - on)).toEqual([idle, idle + interval, idle + 2 * interval]);
    for (const { seg } of probes) {
      expect(seg.payload.length).toBe(0);
      expect(seg.seq).toBe(seqAdd(conn.snd.nxt, -1));
      expect(seg.flags & 0x10).toBe(0x10);
    }
  });
});
