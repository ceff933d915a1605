/**
 * TCP timestamps (RFC 7323) in packetdrill scripts. A script cannot know the TSval clock of the
 * stack under test (netstack's is the millisecond clock plus a keyed hash of the 4-tuple, Linux's
 * a per-connection random offset), so packetdrill maps between script values and live values
 * (google/packetdrill run_packet.c, map_outbound_live_packet / map_inbound_packet); this is that
 * mapping, for one connection:
 *
 *   - Outbound TSval: the first outbound line with a TS option fixes the baseline (script value
 *     v0 = live value a0); a later live value a reads as v0 + (a − a0) in script space. It is only
 *     compared when `--tcp_ts_tick_usecs=T` is given: |that − script value| × T must be within the
 *     tolerance (the larger of --tolerance_usecs and --tolerance_percent of the time since the
 *     script started). packetdrill's default is T = 0: TSval not checked.
 *   - Outbound TSecr: compared exactly with what the script wrote. Inbound TSval are sent as
 *     written, so the TSecr the stack echoes (TS.Recent, RFC 7323 §4.3) is in script space
 *     already. packetdrill does not compare outbound TSecr at all; checking it here is stricter
 *     on purpose: which TSval a stack echoes is the rule of RFC 7323 §4.3 being tested.
 *   - Inbound TSecr (on a segment with ACK): the script writes one of the TSvals its outbound
 *     lines showed; the live value recorded for exactly that script value is sent. Otherwise,
 *     with `--tcp_ts_ecr_scaled`, it is interpolated from the baseline; otherwise the script is
 *     wrong (packetdrill: "unable to infer live TS ecr").
 */

export class TimestampMapping {
  /** script TSval → the live TSval seen on the outbound line that showed it */
  private readonly seen = new Map<number, number>();
  private baseline: { script: number; live: number } | undefined;

  constructor(
    /** µs per TSval tick for the outbound check; 0 leaves TSval unchecked (packetdrill's default). */
    private readonly tickUs: number,
    /** `--tcp_ts_ecr_scaled`: an inbound TSecr no outbound line showed is interpolated. */
    private readonly ecrScaled: boolean,
  ) {}

  /** A live TSval in script space (unchanged before the baseline exists). */
  toScript(live: number): number {
    const b = this.baseline;
    return b ? (b.script + (live - b.live)) >>> 0 : live;
  }

  /**
   * An outbound line expecting `TS val want.val ecr want.ecr` met a segment carrying `got`.
   * Records the mapping (as packetdrill does, before comparing) and returns why it does not
   * match, or undefined. `toleranceUs` bounds the TSval deviation when a tick is set.
   */
  outbound(want: { val: number; ecr: number }, got: { val: number; ecr: number }, toleranceUs: number): string | undefined {
    this.seen.set(want.val >>> 0, got.val >>> 0);
    this.baseline ??= { script: want.val >>> 0, live: got.val >>> 0 };
    const val = this.toScript(got.val);
    if (this.tickUs > 0) {
      const ticks = Math.abs((val - want.val) | 0);
      if (ticks * this.tickUs > toleranceUs) {
        return `TS val ${val}, expected ${want.val} (${ticks} ticks of ${this.tickUs} µs is more than the tolerance of ${toleranceUs} µs)`;
      }
    }
    if (got.ecr >>> 0 !== want.ecr >>> 0) return `TS ecr ${got.ecr >>> 0}, expected ${want.ecr >>> 0}`;
    return undefined;
  }

  /** The live TSecr for an inbound segment's script TSecr, or why there is none. */
  inboundEcr(scriptEcr: number): number | { error: string } {
    const live = this.seen.get(scriptEcr >>> 0);
    if (live !== undefined) return live;
    // An echo of 0 is sent as written: "nothing to echo" (e.g. timestamps not negotiated, where
    // the stack must ignore the option, RFC 7323 §3.2).
    if (scriptEcr >>> 0 === 0) return 0;
    const b = this.baseline;
    if (this.ecrScaled && b) return (scriptEcr - b.script + b.live) >>> 0;
    return { error: `cannot map the inbound TS ecr ${scriptEcr}: no outbound line showed TS val ${scriptEcr} (write one of those, or give --tcp_ts_ecr_scaled)` };
  }
}
