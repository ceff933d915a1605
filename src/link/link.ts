/**
 * The link layer boundary: a Link moves whole IPv4 packets between a device and the
 * stack, in batches. Everything above it is protocol code; everything below is I/O.
 *
 * Packets are Uint8Array (Buffer in practice). A Link never parses them.
 */
export type PacketBatchHandler = (packets: Uint8Array[]) => void;

export interface Link {
  /** Largest IPv4 packet this link carries, in bytes. */
  readonly mtu: number;
  /** Install the receiver. Each call delivers every packet that was ready at once. */
  onReceive(handler: PacketBatchHandler): void;
  /** Queue packets for transmission. A link may batch them until the end of the turn. */
  send(packets: Uint8Array[]): void;
  /** Stop delivering and release the device. Idempotent. */
  close(): void;
}
