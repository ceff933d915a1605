/**
 * Give V8's young generation back when the link goes quiet after a busy spell.
 *
 * V8 grows its young generation (new space) from 1 MiB up to 32 MiB (two 16 MiB semi-spaces)
 * while a burst of work keeps many new objects alive: 10,000 handshakes in a second do. It
 * shrinks it again only at a garbage collection that sees a low allocation rate over the last
 * 5 s (Heap::ReduceNewSpaceSize), and a process with nothing to do allocates nothing, so runs no
 * collection: the 32 MiB stay resident, 3 KiB "per connection" of a server holding 10,000 idle
 * ones. So once the link has been quiet for longer than V8's 5 s window, ask for one minor
 * collection (a scavenge of a nearly empty space: a few milliseconds). It finds the rate low and
 * gives the space back. Once per quiet spell; nothing happens while packets flow.
 *
 * This file holds the decision (a pure tick over injected probes, unit-tested) and the V8 side
 * (`v8YoungGeneration`), which TunLink wires to a real timer.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface IdleMemoryOptions {
  /** A count that grows with traffic (the link's received packets). */
  activity: () => number;
  /** Bytes the young generation holds in memory now. */
  youngBytes: () => number;
  /** Run one minor garbage collection. */
  collect: () => void;
  /** A tick is quiet when fewer packets than this arrived since the previous one. */
  quietPackets?: number;
  /** Quiet ticks in a row before collecting: with TunLink's 3 s tick, 2 make ≥ 6 s > V8's 5 s window. */
  quietTicks?: number;
  /** A young generation smaller than this is left alone (V8 starts it at 1 MiB). */
  minBytes?: number;
}

export class IdleMemory {
  private readonly o: Required<IdleMemoryOptions>;
  private lastActivity: number;
  private quiet = 0;
  /** A busy tick was seen since the last collection (or since the start): a trickle does not count. */
  private armed = false;

  constructor(opts: IdleMemoryOptions) {
    this.o = { quietPackets: 100, quietTicks: 2, minBytes: 4 * 1024 * 1024, ...opts };
    this.lastActivity = opts.activity();
  }

  /** Called once per period. Returns whether it asked V8 for a collection. */
  tick(): boolean {
    const a = this.o.activity();
    const delta = a - this.lastActivity;
    this.lastActivity = a;
    if (delta >= this.o.quietPackets) {
      this.quiet = 0;
      this.armed = true;
      return false;
    }
    this.quiet++;
    if (!this.armed || this.quiet < this.o.quietTicks) return false;
    this.armed = false;
    if (this.o.youngBytes() < this.o.minBytes) return false;
    this.o.collect();
    return true;
  }
}

/** V8's collector, as `node --expose-gc` exposes it: `gc()` is a full collection, `gc({ type: 'minor' })` a scavenge. */
export type GcFunction = (opts?: { type: 'minor' }) => void;

let exposed: GcFunction | undefined;

/**
 * V8's `gc` function. Node exposes it only under --expose-gc; without it the flag is set at run
 * time and the function taken from a fresh context, where V8 installs it (the documented way to
 * set V8 flags from code, v8.setFlagsFromString; --expose-gc changes nothing but that one
 * global). Done on first use.
 */
export function exposedGc(): GcFunction {
  if (exposed) return exposed;
  const global = (globalThis as { gc?: GcFunction }).gc;
  if (typeof global === 'function') return (exposed = global);
  setFlagsFromString('--expose-gc');
  return (exposed = runInNewContext('gc') as GcFunction);
}

/** The V8 side of IdleMemory: the young generation's resident size, and a minor collection. */
export const v8YoungGeneration = {
  bytes(): number {
    return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;
  },
  collect(): void {
    exposedGc()({ type: 'minor' });
  },
};
