import type { Clock } from '../runtime/clock.js';
import type { Link, PacketBatchHandler, PacketMeta } from './link.js';
import { segment } from './virtio.js';

/**
 * Two in-process Link endpoints joined back to back. What one sends, the other receives
 * as one batch, after the clock's `defer` (so a send never re-enters the sender).
 * With a VirtualClock this is fully deterministic.
 *
 * Offload emulation (`offload: true` on an endpoint, like a TUN with IFF_VNET_HDR): a TCP
 * super-segment or partial checksum sent to an endpoint that does offload too passes whole, with
 * its header (two offload-capable stacks, as between two VMs); to one that does not, it is cut
 * into MSS-sized segments with complete checksums first (virtio.ts `segment`, the kernel's GSO).
 */
export class MemoryLink implements Link {
  readonly mtu: number;
  readonly offload: boolean;
  peer: MemoryLink | undefined;
  private handler: PacketBatchHandler | undefined;
  private outbox: Uint8Array[] = [];
  private outMeta: Array<PacketMeta | undefined> | undefined;
  private scheduled = false;
  private closed = false;
  /** Packets sent through this endpoint. */
  sent = 0;

  constructor(
    private readonly clock: Clock,
    mtu = 1500,
    opts: { offload?: boolean } = {},
  ) {
    this.mtu = mtu;
    this.offload = opts.offload ?? false;
  }

  /** `offload`: both endpoints, or [a's, b's]. */
  static pair(clock: Clock, mtu = 1500, opts: { offload?: boolean | [boolean, boolean] } = {}): [MemoryLink, MemoryLink] {
    const o = opts.offload ?? false;
    const [oa, ob] = Array.isArray(o) ? o : [o, o];
    const a = new MemoryLink(clock, mtu, { offload: oa });
    const b = new MemoryLink(clock, mtu, { offload: ob });
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  onReceive(handler: PacketBatchHandler): void {
    this.handler = handler;
  }

  send(packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>): void {
    if (this.closed) return;
    const whole = this.peer?.offload === true;
    for (let i = 0; i < packets.length; i++) {
      const m = meta?.[i];
      if (m === undefined) {
        this.outbox.push(packets[i]!);
      } else if (whole) {
        (this.outMeta ??= [])[this.outbox.length] = m;
        this.outbox.push(packets[i]!);
      } else {
        for (const s of segment(packets[i]!, m)) this.outbox.push(s);
      }
    }
    this.sent += packets.length;
    if (!this.scheduled) {
      this.scheduled = true;
      this.clock.defer(() => this.flush());
    }
  }

  /** Deliver a batch to this endpoint's receiver (used by the peer and by FaultyLink). */
  deliver(packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>): void {
    if (this.closed || packets.length === 0) return;
    this.handler?.(packets, meta);
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.outbox;
    const meta = this.outMeta;
    this.outbox = [];
    this.outMeta = undefined;
    if (meta !== undefined) meta.length = batch.length;
    this.peer?.deliver(batch, meta);
  }

  close(): void {
    this.closed = true;
    this.outbox = [];
    this.outMeta = undefined;
  }
}
