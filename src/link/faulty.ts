/**
 * FaultyLink: seeded fault injection for simulations (what `tc netem` would do on a real
 * link). It wraps one endpoint of a MemoryLink pair; faults apply to what it SENDS, and
 * what it receives comes straight from the peer. Wrap both ends for faults both ways.
 *
 * For each packet sent, in order:
 *   1. loss       dropped with probability `loss`
 *   2. bottleneck if `rateBytesPerMs` is set, the packet waits behind earlier ones and
 *                 takes length / rate ms to serialise; if `queueLimit` packets are already
 *                 waiting it is tail-dropped (a router's drop-tail queue)
 *   3. corrupt    with probability `corrupt`, one random bit flipped in a COPY
 *   4. delay      `delayMs` plus uniform [0, jitterMs) of propagation delay
 *   5. reorder    with probability `reorder`, held back an extra `reorderDelayMs`
 *                 (default max(1, delayMs)) so packets sent after it overtake it
 *   6. duplicate  with probability `duplicate`, delivered twice
 * Delivery is scheduled on the VirtualClock with `clock.at`; packets that arrive at the
 * same instant are delivered to the peer as one batch, in the order they were sent.
 *
 * Offload (see MemoryLink): a super-segment or partial checksum passes whole, faults applying to it
 * as one packet, when the peer does offload and no corruption is configured; otherwise it is cut
 * into wire-sized segments with complete checksums first, and each segment meets the faults alone
 * (a corrupted byte must be caught by a checksum, as on a real wire).
 *
 * Determinism: every packet draws the same number of random values whatever the options,
 * so a given seed and sequence of sends always produce the same deliveries.
 */
import type { VirtualClock } from '../runtime/clock.js';
import { seededRandom } from '../runtime/random.js';
import type { Link, PacketBatchHandler, PacketMeta } from './link.js';
import type { MemoryLink } from './memory.js';
import { segment } from './virtio.js';

export { seededRandom };

export interface FaultyOptions {
  seed: number;
  /** Probabilities in [0, 1]. */
  loss?: number;
  duplicate?: number;
  reorder?: number;
  corrupt?: number;
  /** One-way propagation delay, ms. */
  delayMs?: number;
  /** Extra uniform random delay in [0, jitterMs), ms. Jitter alone can reorder packets. */
  jitterMs?: number;
  /** Extra hold for a reordered packet, ms. Default max(1, delayMs). */
  reorderDelayMs?: number;
  /** Bottleneck rate in bytes per ms (1 byte/ms = 8 kbit/s; 1250 = 10 Mbit/s). */
  rateBytesPerMs?: number;
  /** Packets waiting at the bottleneck before tail drop. Default unlimited. */
  queueLimit?: number;
}

export interface FaultyStats {
  sent: number;
  lost: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
  queueDrops: number;
  /** Copies handed to the peer (including duplicates). */
  delivered: number;
}

export class FaultyLink implements Link {
  readonly mtu: number;
  readonly offload: boolean;
  readonly stats: FaultyStats = { sent: 0, lost: 0, duplicated: 0, reordered: 0, corrupted: 0, queueDrops: 0, delivered: 0 };
  private opts: FaultyOptions;
  private readonly random: () => number;
  /** When the bottleneck finishes serialising everything queued so far. */
  private busyUntil = 0;
  /** Departure times of packets still in the bottleneck queue, oldest first. */
  private departures: number[] = [];
  /** Packets in flight, by arrival time; one clock event per distinct arrival time. */
  private inFlight = new Map<number, { packets: Uint8Array[]; meta: Array<PacketMeta | undefined> | undefined }>();
  private closed = false;

  constructor(
    private readonly inner: MemoryLink,
    private readonly clock: VirtualClock,
    opts: FaultyOptions,
  ) {
    this.mtu = inner.mtu;
    this.offload = inner.offload;
    this.opts = { ...opts };
    this.random = seededRandom(opts.seed);
  }

  /** Change fault parameters mid-run (e.g. stop the loss). The random stream continues. */
  setOptions(partial: Partial<FaultyOptions>): void {
    this.opts = { ...this.opts, ...partial };
  }

  onReceive(handler: PacketBatchHandler): void {
    this.inner.onReceive(handler);
  }

  send(packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>): void {
    if (this.closed) return;
    const whole = this.inner.peer?.offload === true && !(this.opts.corrupt ?? 0);
    for (let i = 0; i < packets.length; i++) {
      const m = meta?.[i];
      if (m === undefined || whole) this.sendOne(packets[i]!, m);
      else for (const s of segment(packets[i]!, m)) this.sendOne(s, undefined);
    }
  }

  close(): void {
    this.closed = true;
    this.inFlight.clear();
    this.inner.close();
  }

  private sendOne(packet: Uint8Array, meta: PacketMeta | undefined): void {
    const o = this.opts;
    const now = this.clock.now();
    this.stats.sent++;
    // Fixed draws per packet, whatever the options (see "Determinism" above).
    const rLoss = this.random();
    const rDup = this.random();
    const rCorrupt = this.random();
    const rReorder = this.random();
    const rJitter = this.random();

    if (rLoss < (o.loss ?? 0)) {
      this.stats.lost++;
      return;
    }

    let departure = now;
    if (o.rateBytesPerMs !== undefined && o.rateBytesPerMs > 0) {
      while (this.departures.length > 0 && this.departures[0]! <= now) this.departures.shift();
      if (this.departures.length >= (o.queueLimit ?? Infinity)) {
        this.stats.queueDrops++;
        return;
      }
      departure = Math.max(now, this.busyUntil) + packet.length / o.rateBytesPerMs;
      this.busyUntil = departure;
      this.departures.push(departure);
    }

    let bytes = packet;
    if (rCorrupt < (o.corrupt ?? 0) && packet.length > 0) {
      bytes = packet.slice();
      const bit = Math.floor(this.random() * packet.length * 8);
      bytes[bit >>> 3]! ^= 1 << (bit & 7);
      this.stats.corrupted++;
    }

    let arrival = departure + (o.delayMs ?? 0) + rJitter * (o.jitterMs ?? 0);
    if (rReorder < (o.reorder ?? 0)) {
      arrival += o.reorderDelayMs ?? Math.max(1, o.delayMs ?? 0);
      this.stats.reordered++;
    }

    this.schedule(arrival, bytes, meta);
    if (rDup < (o.duplicate ?? 0)) {
      this.stats.duplicated++;
      this.schedule(arrival, bytes.slice(), meta);
    }
  }

  private schedule(arrival: number, packet: Uint8Array, meta: PacketMeta | undefined): void {
    const batch = this.inFlight.get(arrival);
    if (batch) {
      if (meta !== undefined) (batch.meta ??= [])[batch.packets.length] = meta;
      batch.packets.push(packet);
      return;
    }
    this.inFlight.set(arrival, { packets: [packet], meta: meta === undefined ? undefined : [meta] });
    this.clock.at(arrival, () => {
      const due = this.inFlight.get(arrival);
      this.inFlight.delete(arrival);
      if (this.closed || !due) return;
      this.stats.delivered += due.packets.length;
      if (due.meta !== undefined) due.meta.length = due.packets.length;
      this.inner.peer?.deliver(due.packets, due.meta);
    });
  }
}
