/**
 * The link layer boundary: a Link moves whole IPv4 packets between a device and the
 * stack, in batches. Everything above it is protocol code; everything below is I/O.
 *
 * Packets are Uint8Array (Buffer in practice). A Link never parses them, and a packet it has
 * delivered belongs to the receiver: the link never writes to it again (TCP may keep a large
 * payload as a view instead of copying it).
 *
 * Offload (virtio-net header semantics, src/link/virtio.ts): a link with `offload` true accepts
 * TCP super-segments (up to 64 KiB, cut into MSS-sized segments below us) and partial checksums,
 * and may deliver the same. The per-packet header travels beside the packets, in an array of the
 * same length (`meta[i]` belongs to `packets[i]`; undefined or absent: a plain packet).
 */
import type { VirtioNetHdr } from './virtio.js';

export type PacketMeta = VirtioNetHdr;
export type PacketBatchHandler = (packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>) => void;

export interface Link {
  /** Largest IPv4 packet this link carries, in bytes (a super-segment with offload excepted). */
  readonly mtu: number;
  /** The link takes (and may deliver) super-segments and partial checksums with their headers. */
  readonly offload?: boolean;
  /** Install the receiver. Each call delivers every packet that was ready at once. */
  onReceive(handler: PacketBatchHandler): void;
  /** Queue packets for transmission. A link may batch them until the end of the turn. */
  send(packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>): void;
  /** Stop delivering and release the device. Idempotent. */
  close(): void;
  /**
   * The stack's buffers shrank a lot (a flood ended): give the memory they held back to the
   * system once it is really free. Optional: only a link with native code (TunLink) can.
   */
  releaseFreedMemory?(): void;
}
