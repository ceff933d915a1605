import { createRequire } from 'node:module';
import { prefixMask } from '../ip/addr.js';
import type { Ipv4Addr } from '../ip/addr.js';
import type { Link, PacketBatchHandler } from './link.js';

/**
 * A Linux TUN device as a Link: raw IPv4 packets in and out, no link-layer header.
 * Opened with `tap: true` it is a TAP device instead, and what moves through it are whole
 * Ethernet II frames (src/link/ethernet-layer.ts frames and unframes them for the stack).
 *
 * The native addon (src/link/native/tun.c) watches the non-blocking fd with uv_poll and
 * delivers every packet that was ready in one callback; `send` queues packets and writes
 * them all with one native call at the end of the current turn of the event loop.
 */

/** The native addon's surface (see the comment at the top of tun.c). */
interface NativeTun {
  open(name: string, tap?: boolean): { handle: NativeHandle; name: string };
  setAddress(name: string, addr: number, netmask: number): void;
  setMtu(name: string, mtu: number): void;
  getMtu(name: string): number;
  setTxQueueLen(name: string, packets: number): void;
  setUp(name: string, up: boolean): void;
  start(
    handle: NativeHandle,
    onPackets: (packets: Uint8Array[]) => void,
    onWritable: () => void,
    onError: (err: Error) => void,
  ): void;
  writeBatch(
    handle: NativeHandle,
    packets: Uint8Array[],
    start: number,
  ): { consumed: number; failed: number; bytes: number; blocked: boolean };
  close(handle: NativeHandle): void;
}
declare const nativeHandleBrand: unique symbol;
type NativeHandle = { readonly [nativeHandleBrand]: true };

let nativeTun: NativeTun | undefined;

/**
 * Load the addon once. The same relative path works from src/link/tun.ts (tsx, vitest)
 * and from dist/link/tun.js (the published CLI).
 */
export function loadNativeTun(): NativeTun {
  if (!nativeTun) {
    try {
      nativeTun = createRequire(import.meta.url)('../../build/Release/netstack_tun.node') as NativeTun;
    } catch (cause) {
      const err = new Error(
        'the TUN addon is not built (build/Release/netstack_tun.node): run `npm install` or `npm run build`',
        { cause },
      ) as NodeJS.ErrnoException;
      err.code = 'ERR_NETSTACK_ADDON';
      throw err;
    }
  }
  return nativeTun;
}

/** Packets waiting for the device beyond this many are dropped (counted in txDrops). */
const TX_QUEUE_LIMIT = 4096;
/** Packets the kernel may queue toward us (the interface's txqueuelen). */
export const DEFAULT_TX_QUEUE_LEN = 2000;

export interface TunStats {
  rxPackets: number;
  rxBytes: number;
  /** Reads that delivered at least one packet: rxPackets / rxBatches is the mean batch size. */
  rxBatches: number;
  txPackets: number;
  txBytes: number;
  /** Packets not written: queue full, link closed, or rejected by the kernel. */
  txDrops: number;
}

export class TunLink implements Link {
  /** Interface name, as the kernel has it (e.g. "netstack0", or "tun3" when it picked). */
  readonly name: string;
  /** A TAP device: the packets are Ethernet frames, `mtu` is still the largest IPv4 packet. */
  readonly tap: boolean;
  readonly stats: TunStats = { rxPackets: 0, rxBytes: 0, rxBatches: 0, txPackets: 0, txBytes: 0, txDrops: 0 };

  private readonly native: NativeTun;
  private handle: NativeHandle | undefined;
  private currentMtu: number;
  private handler: PacketBatchHandler | undefined;
  private txQueue: Uint8Array[] = [];
  private flushScheduled = false;
  /** The kernel said EAGAIN: wait for the addon's onWritable before writing again. */
  private waitingForWritable = false;
  /** Set when reading failed (e.g. the device vanished); the link stops delivering. */
  error: Error | undefined;
  private errorHandler: ((err: Error) => void) | undefined;

  private constructor(native: NativeTun, handle: NativeHandle, name: string, mtu: number, tap: boolean) {
    this.native = native;
    this.tap = tap;
    this.handle = handle;
    this.name = name;
    this.currentMtu = mtu;
  }

  /**
   * Create the TUN device (not configured, not up). Without a name the kernel picks one.
   * Throws an Error whose `code` is the errno name: EPERM/EACCES (no CAP_NET_ADMIN),
   * ENOENT (no /dev/net/tun), EBUSY (name taken by a busy TUN or by another kind of interface).
   * `tap: true` opens a TAP device (IFF_TAP): Ethernet frames instead of IPv4 packets.
   */
  static open(opts: { name?: string; mtu?: number; txQueueLen?: number; tap?: boolean } = {}): TunLink {
    const native = loadNativeTun();
    const tap = opts.tap ?? false;
    const { handle, name } = native.open(opts.name ?? '', tap);
    try {
      if (opts.mtu !== undefined) native.setMtu(name, opts.mtu);
      // The kernel queues packets for us while JS is busy; TUN's default of 500 overflows under
      // a 1 MB receive window and a busy event loop (drops seen with 200 HTTP clients).
      native.setTxQueueLen(name, opts.txQueueLen ?? DEFAULT_TX_QUEUE_LEN);
      return new TunLink(native, handle, name, native.getMtu(name), tap);
    } catch (err) {
      native.close(handle);
      throw err;
    }
  }

  /** Largest IPv4 packet the device carries (its MTU). */
  get mtu(): number {
    return this.currentMtu;
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.handle === undefined;
  }

  /**
   * Configure the host side of the interface by ioctl: `addr/prefix` is the address the
   * *kernel* uses on this link (the stack answers for another address in that subnet),
   * which also gives the kernel its connected route. Only works while the interface is in
   * this process's network namespace.
   */
  configure(opts: { addr: Ipv4Addr; prefix: number; mtu?: number; up?: boolean }): void {
    if (!Number.isInteger(opts.prefix) || opts.prefix < 1 || opts.prefix > 32) {
      throw Object.assign(new RangeError(`prefix must be 1..32, got ${opts.prefix}`), { code: 'EINVAL' });
    }
    this.native.setAddress(this.name, opts.addr >>> 0, prefixMask(opts.prefix));
    if (opts.mtu !== undefined) {
      this.native.setMtu(this.name, opts.mtu);
      this.currentMtu = opts.mtu;
    }
    if (opts.up ?? true) this.native.setUp(this.name, true);
  }

  /** Install the receiver; reading starts with the first call. */
  onReceive(handler: PacketBatchHandler): void {
    const first = this.handler === undefined;
    this.handler = handler;
    if (first && this.handle) {
      this.native.start(
        this.handle,
        (packets) => this.receive(packets),
        () => this.onWritable(),
        (err) => this.onReadError(err),
      );
    }
  }

  private receive(packets: Uint8Array[]): void {
    const s = this.stats;
    s.rxBatches++;
    s.rxPackets += packets.length;
    for (const p of packets) s.rxBytes += p.byteLength;
    this.handler?.(packets);
  }

  /** Called once if the device fails while reading (the link is closed by then). */
  onError(handler: (err: Error) => void): void {
    this.errorHandler = handler;
  }

  private onReadError(err: Error): void {
    // Reading cannot continue (the device is gone or broken): close, then tell the owner.
    this.error = err;
    this.close();
    this.errorHandler?.(err);
  }

  /**
   * Queue packets; they are written together once the current synchronous work is done
   * (a microtask), so all replies produced while handling one received batch leave in
   * one native call. (Measured against setImmediate with `ping -f -l 64`, 100k echoes
   * through the Stack: the same ~100k round trips/s within noise; the microtask sends
   * each reply before the loop moves on to timers and other I/O, so it keeps latency lowest.)
   */
  send(packets: Uint8Array[]): void {
    if (!this.handle) {
      this.stats.txDrops += packets.length;
      return;
    }
    for (const p of packets) {
      if (this.txQueue.length >= TX_QUEUE_LIMIT) {
        this.stats.txDrops++;
        continue;
      }
      this.txQueue.push(p);
    }
    if (!this.flushScheduled && !this.waitingForWritable && this.txQueue.length > 0) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (!this.handle || this.waitingForWritable || this.txQueue.length === 0) return;
    const queue = this.txQueue;
    const r = this.native.writeBatch(this.handle, queue, 0);
    const written = r.consumed - r.failed;
    this.stats.txPackets += written;
    this.stats.txBytes += r.bytes;
    this.stats.txDrops += r.failed;
    if (r.blocked) {
      // The kernel queue is full: keep the rest and let the addon tell us when to go on.
      this.txQueue = queue.slice(r.consumed);
      this.waitingForWritable = true;
    } else {
      this.txQueue = [];
    }
  }

  private onWritable(): void {
    this.waitingForWritable = false;
    this.flush();
  }

  /** Stop reading and close the fd: the kernel then removes the interface. Idempotent. */
  close(): void {
    const handle = this.handle;
    if (!handle) return;
    this.handle = undefined;
    this.stats.txDrops += this.txQueue.length;
    this.txQueue = [];
    this.native.close(handle);
  }

  toString(): string {
    return `TunLink(${this.tap ? 'TAP ' : ''}${this.name}, mtu ${this.currentMtu})`;
  }
}

