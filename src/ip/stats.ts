/**
 * Flat named counters ('ip.in', 'ip.drop.bad-checksum', ...). Every packet we drop is
 * counted under its reason, so `netstack stats` and the tests can see why.
 */
export class Counters {
  private readonly values: Record<string, number> = {};

  constructor(names: readonly string[] = []) {
    // Pre-register the usual counters so a snapshot shows them even while zero.
    for (const n of names) this.values[n] = 0;
  }

  inc(name: string, by = 1): void {
    this.values[name] = (this.values[name] ?? 0) + by;
  }

  get(name: string): number {
    return this.values[name] ?? 0;
  }

  /** A copy of every counter; `prefix` is prepended to each name. */
  snapshot(prefix = ''): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.values)) out[prefix + k] = v;
    return out;
  }
}

/**
 * A token bucket (the usual rate limiter, as in RFC 1812 section 4.3.2.8 for ICMP):
 * `ratePerSecond` tokens accrue continuously up to `burst`; each event spends one.
 * Driven only by the `now` it is given.
 */
export class TokenBucket {
  private tokens: number;
  private last: number | undefined;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Spend one token if there is one. */
  take(now: number): boolean {
    if (this.last !== undefined && now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
    }
    if (this.last === undefined || now > this.last) this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
