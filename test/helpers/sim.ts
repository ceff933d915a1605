/**
 * Two netstack instances joined by an in-memory link on a virtual clock, with optional
 * seeded faults in each direction. Everything — ISNs, ports, losses — follows from the seed,
 * so a failing seed replays exactly.
 */
import { parseIpv4 } from '../../src/ip/addr.js';
import type { FaultyOptions } from '../../src/link/faulty.js';
import { FaultyLink } from '../../src/link/faulty.js';
import { MemoryLink } from '../../src/link/memory.js';
import { VirtualClock } from '../../src/runtime/clock.js';
import { seededRandom } from '../../src/runtime/random.js';
import { Stack } from '../../src/stack.js';
import type { TcpConfig } from '../../src/tcp/config.js';
import type { TcpLimits } from '../../src/tcp/limits.js';
import type { TransitionEvent } from '../../src/tcp/layer.js';

export const A_ADDR = '10.0.0.1';
export const B_ADDR = '10.0.0.2';

export interface SimOptions {
  seed?: number;
  mtu?: number;
  /** Faults on packets A sends (toward B) and B sends (toward A). */
  aToB?: Omit<FaultyOptions, 'seed'>;
  bToA?: Omit<FaultyOptions, 'seed'>;
  tcp?: Partial<TcpConfig>;
  tcpA?: Partial<TcpConfig>;
  tcpB?: Partial<TcpConfig>;
  /** Caps and rate limits of B, the usual server (src/tcp/limits.ts). */
  limitsB?: Partial<TcpLimits>;
  /** Emulated offload on the links' endpoints (both, or [A's, B's]): super-segments (MemoryLink). */
  offload?: boolean | [boolean, boolean];
}

export interface Sim {
  seed: number;
  clock: VirtualClock;
  a: Stack;
  b: Stack;
  /** Fault injectors (present when faults were asked for). */
  aOut?: FaultyLink;
  bOut?: FaultyLink;
  /** Every transition as "A: FROM -> TO (cause)". */
  trace: string[];
  /** The transitions of one side's connections, as "FROM>TO". */
  states(side: 'a' | 'b'): string[];
  /** The transitions of one side's connections with their virtual time. */
  transitions(side: 'a' | 'b'): Array<TransitionEvent & { at: number }>;
}

function secret(rand: () => number): Uint8Array {
  const s = new Uint8Array(16);
  for (let i = 0; i < 16; i++) s[i] = Math.floor(rand() * 256);
  return s;
}

export function createSim(opts: SimOptions = {}): Sim {
  const seed = opts.seed ?? 1;
  const rand = seededRandom(seed ^ 0x5eed);
  const clock = new VirtualClock(1_000_000);
  const [la, lb] = MemoryLink.pair(clock, opts.mtu ?? 1500, { offload: opts.offload });
  const aOut = opts.aToB ? new FaultyLink(la, clock, { seed: seed * 2 + 1, ...opts.aToB }) : undefined;
  const bOut = opts.bToA ? new FaultyLink(lb, clock, { seed: seed * 2 + 2, ...opts.bToA }) : undefined;
  const a = new Stack({
    link: aOut ?? la,
    addr: parseIpv4(A_ADDR)!,
    clock,
    isnSecret: secret(rand),
    random: seededRandom(seed * 7 + 3),
    tcp: { ...opts.tcp, ...opts.tcpA },
    name: 'A',
  });
  const b = new Stack({
    link: bOut ?? lb,
    addr: parseIpv4(B_ADDR)!,
    clock,
    isnSecret: secret(rand),
    random: seededRandom(seed * 7 + 5),
    tcp: { ...opts.tcp, ...opts.tcpB },
    limits: opts.limitsB,
    name: 'B',
  });
  const trace: string[] = [];
  const bySide: Record<'a' | 'b', Array<TransitionEvent & { at: number }>> = { a: [], b: [] };
  a.onTransition((e) => {
    trace.push(`A: ${e.from} -> ${e.to} (${e.cause})`);
    bySide.a.push({ ...e, at: clock.now() });
  });
  b.onTransition((e) => {
    trace.push(`B: ${e.from} -> ${e.to} (${e.cause})`);
    bySide.b.push({ ...e, at: clock.now() });
  });
  return {
    seed,
    clock,
    a,
    b,
    aOut,
    bOut,
    trace,
    states: (side) => bySide[side].map((e) => `${e.from}>${e.to}`),
    transitions: (side) => bySide[side],
  };
}

/** Deterministic test data: `n` bytes from a seeded generator. */
export function randomBytes(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}
