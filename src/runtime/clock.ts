/**
 * Time for the runtime. Protocol code never reads a clock: the runtime reads one of these
 * and passes `now` (milliseconds, a plain number) down.
 *
 * A Clock offers exactly one timer, because the stack only ever needs one: the earliest
 * deadline of everything it holds (DESIGN.md: "one timer for the earliest deadline").
 */
export interface Clock {
  now(): number;
  /** Run `fn` at time `at` (or soon after). Replaces any earlier request of this handle. */
  timer(fn: () => void): ClockTimer;
  /** Run `fn` after the current synchronous work, before any timer (a "soon" queue). */
  defer(fn: () => void): void;
}

export interface ClockTimer {
  /** Arm for `at` (ms, same scale as now()). Re-arming replaces the previous deadline. */
  set(at: number): void;
  clear(): void;
}

/** Wall clock: performance.now()-based milliseconds, setTimeout and queueMicrotask. */
export class RealClock implements Clock {
  now(): number {
    return performance.now();
  }
  timer(fn: () => void): ClockTimer {
    let handle: NodeJS.Timeout | undefined;
    let armedAt = Infinity;
    const fire = () => {
      handle = undefined;
      armedAt = Infinity;
      fn();
    };
    return {
      set: (at: number) => {
        if (at === armedAt && handle) return;
        if (handle) clearTimeout(handle);
        armedAt = at;
        if (!Number.isFinite(at)) {
          handle = undefined;
          return;
        }
        // setTimeout has 1 ms granularity; schedule exactly to the deadline, not a poll.
        handle = setTimeout(fire, Math.max(0, Math.ceil(at - performance.now())));
        handle.unref?.();
      },
      clear: () => {
        if (handle) clearTimeout(handle);
        handle = undefined;
        armedAt = Infinity;
      },
    };
  }
  defer(fn: () => void): void {
    queueMicrotask(fn);
  }
}

interface VirtualEvent {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A deterministic virtual clock for simulations. Time only moves when `advance` or
 * `run` is called; events at the same time run in the order they were scheduled.
 * A 60 s TIME_WAIT takes microseconds of real time.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: VirtualEvent[] = [];
  private deferred: Array<() => void> = [];
  /** Events run so far; a bound on it guards against a livelock in a broken simulation. */
  eventsRun = 0;

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  /** Schedule a one-shot event at absolute time `at`. Returns a cancel function. */
  at(at: number, fn: () => void): () => void {
    const ev: VirtualEvent = { at: Math.max(at, this.t), seq: this.seq++, fn, cancelled: false };
    this.push(ev);
    return () => {
      ev.cancelled = true;
    };
  }

  timer(fn: () => void): ClockTimer {
    let cancel: (() => void) | undefined;
    let armedAt = Infinity;
    return {
      set: (at: number) => {
        if (at === armedAt && cancel) return;
        cancel?.();
        cancel = undefined;
        armedAt = at;
        if (!Number.isFinite(at)) return;
        cancel = this.at(at, () => {
          cancel = undefined;
          armedAt = Infinity;
          fn();
        });
      },
      clear: () => {
        cancel?.();
        cancel = undefined;
        armedAt = Infinity;
      },
    };
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** Run deferred work until none is left (bounded). */
  private drainDeferred(): boolean {
    let ran = false;
    for (let i = 0; this.deferred.length > 0; i++) {
      if (i > 10_000_000) throw new Error('VirtualClock: deferred work does not converge');
      const fn = this.deferred.shift()!;
      fn();
      ran = true;
    }
    return ran;
  }

  /** Time of the next pending event, or Infinity. */
  nextAt(): number {
    this.drainDeferred();
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap.length > 0 ? this.heap[0]!.at : Infinity;
  }

  /** Run every event due up to and including `until`, then set now = until. */
  runUntil(until: number, maxEvents = 50_000_000): void {
    this.drainDeferred();
    for (;;) {
      const next = this.nextAt();
      if (next > until) break;
      const ev = this.pop()!;
      if (ev.cancelled) continue;
      this.t = ev.at;
      if (++this.eventsRun > maxEvents) throw new Error(`VirtualClock: more than ${maxEvents} events`);
      ev.fn();
      this.drainDeferred();
    }
    if (until > this.t && Number.isFinite(until)) this.t = until;
  }

  advance(ms: number): void {
    this.runUntil(this.t + ms);
  }

  /**
   * Run until `done()` is true or virtual time passes `limit` ms from now.
   * Returns whether `done()` became true.
   */
  runWhile(notDone: () => boolean, limit: number, maxEvents = 50_000_000): boolean {
    const end = this.t + limit;
    this.drainDeferred();
    while (notDone()) {
      const next = this.nextAt();
      if (next > end) {
        this.t = end;
        return !notDone();
      }
      const ev = this.pop()!;
      if (ev.cancelled) continue;
      this.t = ev.at;
      if (++this.eventsRun > maxEvents) throw new Error(`VirtualClock: more than ${maxEvents} events`);
      ev.fn();
      this.drainDeferred();
    }
    return true;
  }

  /**
   * The asynchronous driver for simulations with Node streams (whose events run on
   * process.nextTick): between virtual instants it lets the real event loop settle, so
   * 'data', 'end', 'finish' and 'close' handlers run before virtual time moves on.
   * Runs until `notDone()` is false or `limit` virtual ms pass; returns whether it finished.
   */
  async run(notDone: () => boolean, limit: number, maxSteps = 5_000_000): Promise<boolean> {
    const end = this.t + limit;
    for (let step = 0; step < maxSteps; step++) {
      await settle();
      const ran = this.drainDeferred();
      if (!notDone()) return true;
      const next = this.nextAt();
      // Deferred work (a flush) can deliver packets at once, and their socket events run on
      // nextTick: settle again before time moves on, or an 'error' waits for the next event.
      if (ran && next > this.t) continue;
      if (next > end) {
        // Nothing more can happen before the limit, unless a real-time callback wakes us.
        await settle();
        this.drainDeferred();
        if (this.nextAt() <= end || !notDone()) continue;
        this.t = end;
        return !notDone();
      }
      // Run every event of this instant, then settle again.
      this.t = next;
      while (this.nextAt() === next) {
        const ev = this.pop()!;
        if (ev.cancelled) continue;
        if (++this.eventsRun > 50_000_000) throw new Error('VirtualClock: more than 50M events');
        ev.fn();
        this.drainDeferred();
      }
    }
    throw new Error(`VirtualClock.run: more than ${maxSteps} steps`);
  }

  /** Let `ms` of virtual time pass, settling Node's event loop at every instant. */
  async sleep(ms: number): Promise<void> {
    const until = this.t + ms;
    await this.run(() => true, ms);
    this.t = Math.max(this.t, until);
  }

  private push(ev: VirtualEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, ev)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = ev;
  }

  private pop(): VirtualEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && less(h[r]!, h[l]!) ? r : l;
        if (less(last, h[c]!)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

/** Resolve after Node has run every pending nextTick, microtask and immediate. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function less(a: VirtualEvent, b: VirtualEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
