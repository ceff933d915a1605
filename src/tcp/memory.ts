/**
 * The stack-wide memory budget for TCP's buffers, like Linux's tcp_mem: every byte a connection
 * holds for its peer or its application (unread received data, out-of-order data, unacknowledged
 * sent data) is charged here.
 *
 *   below `pressure`   windows and send buffers grow with the application's rate (autotuning)
 *   above `pressure`   they stop growing and fall back to their initial size for new
 *                      advertisements; out-of-order data is not kept (the sender retransmits)
 *   above `limit`      no new data is accepted at all: it is dropped and the sender retransmits
 *                      later, exactly as with a full receive buffer — never a crash
 *
 * Pressure ends only below `low`, so a stack near the threshold does not flap (Linux's tcp_mem
 * has the same three numbers: low, pressure, high).
 */

/** Default budget: 256 MiB (`netstack up --mem-limit`). */
export const DEFAULT_MEM_LIMIT = 256 * 1024 * 1024;

/** Falls from a high point below this are not worth giving back (see shouldGiveBack). */
export const GIVE_BACK_MIN = 16 * 1024 * 1024;

export class MemoryBudget {
  /** Bytes charged now. */
  used = 0;
  /** The most ever charged at once. */
  peak = 0;
  readonly pressureAt: number;
  readonly lowAt: number;
  private pressured = false;
  /** The most charged since memory was last given back (see shouldGiveBack). */
  private highSinceGiveBack = 0;

  constructor(readonly limit: number = DEFAULT_MEM_LIMIT) {
    this.pressureAt = Math.floor((limit * 3) / 4);
    this.lowAt = Math.floor(limit / 2);
  }

  /** Charge `bytes` (negative: give back). */
  charge(bytes: number): void {
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    if (this.used > this.highSinceGiveBack) this.highSinceGiveBack = this.used;
  }

  /**
   * True once each time the buffers have fallen from a high point of at least GIVE_BACK_MIN bytes
   * to under a quarter of it: the memory they held is worth handing back to the system (the C
   * library keeps freed memory for reuse, so a process's RSS stays at the peak of a flood).
   */
  shouldGiveBack(): boolean {
    if (this.highSinceGiveBack < GIVE_BACK_MIN || this.used * 4 > this.highSinceGiveBack) return false;
    this.highSinceGiveBack = this.used;
    return true;
  }

  /** Above the pressure threshold (and not yet back below `low`). */
  get underPressure(): boolean {
    if (this.used >= this.pressureAt) this.pressured = true;
    else if (this.used < this.lowAt) this.pressured = false;
    return this.pressured;
  }

  /** Whether `bytes` more fit under the hard limit. */
  allows(bytes: number): boolean {
    return this.used + bytes <= this.limit;
  }
}
