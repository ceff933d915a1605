import type { Clock } from '../runtime/clock.js';
import type { Link, PacketBatchHandler } from './link.js';

/**
 * Two in-process Link endpoints joined back to back. What one sends, the other receives
 * as one batch, after the clock's `defer` (so a send never re-enters the sender).
 * With a VirtualClock this is fully deterministic.
 */
export class MemoryLink implements Link {
  readonly mtu: number;
  peer: MemoryLink | undefined;
  private handler: PacketBatchHandler | undefined;
  private outbox: Uint8Array[] = [];
  private scheduled = false;
  private closed = false;
  /** Packets sent through this endpoint. */
  sent = 0;

  constructor(
    private readonly clock: Clock,
    mtu = 1500,
  ) {
    this.mtu = mtu;
  }

  static pair(clock: Clock, mtu = 1500): [MemoryLink, MemoryLink] {
    const a = new MemoryLink(clock, mtu);
    const b = new MemoryLink(clock, mtu);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  onReceive(handler: PacketBatchHandler): void {
    this.handler = handler;
  }

  send(packets: Uint8Array[]): void {
    if (this.closed) return;
    for (const p of packets) this.outbox.push(p);
    this.sent += packets.length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.clock.defer(() => this.flush());
    }
  }

  /** Deliver a batch to this endpoint's receiver (used by the peer and by FaultyLink). */
  deliver(packets: Uint8Array[]): void {
    if (this.closed || packets.length === 0) return;
    this.handler?.(packets);
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.outbox;
    this.outbox = [];
    this.peer?.deliver(batch);
  }

  close(): void {
    this.closed = true;
    this.outbox = [];
  }
}
