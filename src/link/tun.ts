import { createRequire } from 'node:module';
import { prefixMask } from '../ip/addr.js';
import type { Ipv4Addr } from '../ip/addr.js';
import type { Link, PacketBatchHandler, PacketMeta } from './link.js';
import { VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_LEN, readVirtioHdr, writeVirtioHdr } from './virtio.js';
import { afterMajorGcs } from '../runtime/after-gc.js';
import { IdleMemory, v8YoungGeneration } from '../runtime/idle-memory.js';

/** Major GCs after a fall of TCP's buffers that are each followed by a malloc_trim (releaseFreedMemory). */
const TRIMS_AFTER_FALL = 3;
/** How often the link checks whether it went quiet (src/runtime/idle-memory.ts). */
const IDLE_CHECK_MS = 3000;

/**
 * A Linux TUN device as a Link: raw IPv4 packets in and out, no link-layer header.
 * Opened with `tap: true` it is a TAP device instead, and what moves through it are whole
 * Ethernet II frames (src/link/ethernet-layer.ts frames and unframes them for the stack).
 *
 * The native addon (src/link/native/tun.c) watches the non-blocking fd with uv_poll and
 * delivers every packet that was ready in one callback; `send` queues packets and writes
 * them all with one native call at the end of the current turn of the event loop.
 *
 * Offload (`open({ offload: true })`, TUN only): the device is opened with IFF_VNET_HDR and the
 * kernel is told we take partial checksums and TCP super-segments (TUNSETOFFLOAD CSUM|TSO4|TSO6).
 * Every packet then comes and goes with a virtio-net header (src/link/virtio.ts), exposed as the
 * per-packet `meta` of the Link interface. If the kernel refuses, the device is opened as before
 * (`offload` false, `offloadError` says why).
 */

/** The native addon's surface (see the comment at the top of tun.c). */
interface NativeTun {
  open(name: string, tap?: boolean, offload?: boolean): { handle: NativeHandle; name: string; vnetHdrLen: number; offloadError: string | undefined };
  setAddress(name: string, addr: number, netmask: number): void;
  setMtu(name: string, mtu: number): void;
  getMtu(name: string): number;
  setTxQueueLen(name: string, packets: number): void;
  setUp(name: string, up: boolean): void;
  start(
    handle: NativeHandle,
    onPackets: (packets: Uint8Array[], vnetHdrs: Uint8Array | undefined) => void,
    onWritable: () => void,
    onError: (err: Error) => void,
  ): void;
  writeBatch(
    handle: NativeHandle,
    packets: Uint8Array[],
    start: number,
    vnetHdrs?: Uint8Array,
  ): { consumed: number; failed: number; bytes: number; blocked: boolean };
  close(handle: NativeHandle): void;
  trimMemory(): boolean;
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
  /** TCP super-segments (GSO) read from / written to the kernel (offload on). */
  rxGso: number;
  txGso: number;
  /** Times the link went quiet after traffic and V8 was asked to give its grown young generation back. */
  idleCollections: number;
}

export class TunLink implements Link {
  /** Interface name, as the kernel has it (e.g. "netstack0", or "tun3" when it picked). */
  readonly name: string;
  /** A TAP device: the packets are Ethernet frames, `mtu` is still the largest IPv4 packet. */
  readonly tap: boolean;
  readonly stats: TunStats = { rxPackets: 0, rxBytes: 0, rxBatches: 0, txPackets: 0, txBytes: 0, txDrops: 0, rxGso: 0, txGso: 0, idleCollections: 0 };
  /** Opened with IFF_VNET_HDR and offloads: packets carry virtio-net headers (meta). */
  readonly offload: boolean;
  /** Why offload was asked for and is off (the ioctl the kernel refused), if it is. */
  readonly offloadError: string | undefined;

  private readonly native: NativeTun;
  private handle: NativeHandle | undefined;
  private currentMtu: number;
  private handler: PacketBatchHandler | undefined;
  private txQueue: Uint8Array[] = [];
  /** Headers of txQueue's packets (same indices), once any has one. */
  private txMeta: Array<PacketMeta | undefined> | undefined;
  private flushScheduled = false;
  /** The kernel said EAGAIN: wait for the addon's onWritable before writing again. */
  private waitingForWritable = false;
  /** Set when reading failed (e.g. the device vanished); the link stops delivering. */
  error: Error | undefined;
  private errorHandler: ((err: Error) => void) | undefined;
  /** Checks every IDLE_CHECK_MS whether traffic stopped (see IdleMemory); unref'd, runs while reading. */
  private idleTimer: NodeJS.Timeout | undefined;

  private constructor(native: NativeTun, handle: NativeHandle, name: string, mtu: number, tap: boolean, vnetHdrLen: number, offloadError: string | undefined) {
    this.native = native;
    this.offload = vnetHdrLen === VIRTIO_NET_HDR_LEN;
    this.offloadError = offloadError;
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
  static open(opts: { name?: string; mtu?: number; txQueueLen?: number; tap?: boolean; offload?: boolean } = {}): TunLink {
    const native = loadNativeTun();
    const tap = opts.tap ?? false;
    const { handle, name, vnetHdrLen, offloadError } = native.open(opts.name ?? '', tap, (opts.offload ?? false) && !tap);
    try {
      if (opts.mtu !== undefined) native.setMtu(name, opts.mtu);
      // The kernel queues packets for us while JS is busy; TUN's default of 500 overflows under
      // a 1 MB receive window and a busy event loop (drops seen with 200 HTTP clients).
      native.setTxQueueLen(name, opts.txQueueLen ?? DEFAULT_TX_QUEUE_LEN);
      return new TunLink(native, handle, name, native.getMtu(name), tap, vnetHdrLen, offloadError);
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
        (packets, hdrs) => this.receive(packets, hdrs),
        () => this.onWritable(),
        (err) => this.onReadError(err),
      );
      const idle = new IdleMemory({ activity: () => this.stats.rxPackets, youngBytes: v8YoungGeneration.bytes, collect: v8YoungGeneration.collect });
      this.idleTimer = setInterval(() => {
        if (idle.tick()) this.stats.idleCollections++;
      }, IDLE_CHECK_MS).unref();
    }
  }

  private receive(packets: Uint8Array[], hdrs: Uint8Array | undefined): void {
    const s = this.stats;
    s.rxBatches++;
    s.rxPackets += packets.length;
    for (const p of packets) s.rxBytes += p.byteLength;
    // Decode the headers; an all-zero one (a plain packet) stays undefined, allocating nothing.
    let meta: Array<PacketMeta | undefined> | undefined;
    if (hdrs !== undefined) {
      for (let i = 0; i < packets.length; i++) {
        const h = readVirtioHdr(hdrs, i * VIRTIO_NET_HDR_LEN);
        if (h === undefined) continue;
        (meta ??= new Array<PacketMeta | undefined>(packets.length))[i] = h;
        if (h.gsoType !== VIRTIO_NET_HDR_GSO_NONE) s.rxGso++;
      }
    }
    this.handler?.(packets, meta);
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
  send(packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>): void {
    if (!this.handle) {
      this.stats.txDrops += packets.length;
      return;
    }
    for (let i = 0; i < packets.length; i++) {
      if (this.txQueue.length >= TX_QUEUE_LIMIT) {
        this.stats.txDrops++;
        continue;
      }
      const m = this.offload ? meta?.[i] : undefined; // a link without offload never gets asked (Stack checks)
      if (m !== undefined) (this.txMeta ??= [])[this.txQueue.length] = m;
      this.txQueue.push(packets[i]!);
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
    const meta = this.txMeta;
    let hdrs: Uint8Array | undefined;
    if (meta !== undefined) {
      // One buffer of headers for the whole batch (zeros for plain packets).
      hdrs = new Uint8Array(queue.length * VIRTIO_NET_HDR_LEN);
      for (let i = 0; i < queue.length; i++) {
        const m = meta[i];
        if (m === undefined) continue;
        writeVirtioHdr(hdrs, i * VIRTIO_NET_HDR_LEN, m);
      }
    }
    const r = this.native.writeBatch(this.handle, queue, 0, hdrs);
    if (meta !== undefined) for (let i = 0; i < r.consumed; i++) if (meta[i] !== undefined && meta[i]!.gsoType !== VIRTIO_NET_HDR_GSO_NONE) this.stats.txGso++;
    const written = r.consumed - r.failed;
    this.stats.txPackets += written;
    this.stats.txBytes += r.bytes;
    this.stats.txDrops += r.failed;
    if (r.blocked) {
      // The kernel queue is full: keep the rest and let the addon tell us when to go on.
      this.txQueue = queue.slice(r.consumed);
      if (meta !== undefined) {
        meta.length = queue.length;
        this.txMeta = meta.slice(r.consumed);
      }
      this.waitingForWritable = true;
    } else {
      this.txQueue = [];
      this.txMeta = undefined;
    }
  }

  private onWritable(): void {
    this.waitingForWritable = false;
    this.flush();
  }

  /** Once major GCs have freed the buffers, malloc_trim (the addon): see Link. */
  releaseFreedMemory(): void {
    const native = this.native;
    // After each of the next few major GCs, not only the first: connections still closing when
    // that one ran free their buffers in a later one (measured: 38-135 MiB left after the
    // hoarders with one trim, as the timing fell; 36-39 MiB with three).
    afterMajorGcs(TRIMS_AFTER_FALL, () => native.trimMemory());
  }

  /** Stop reading and close the fd: the kernel then removes the interface. Idempotent. */
  close(): void {
    const handle = this.handle;
    if (!handle) return;
    this.handle = undefined;
    clearInterval(this.idleTimer);
    this.stats.txDrops += this.txQueue.length;
    this.txQueue = [];
    this.txMeta = undefined;
    this.native.close(handle);
  }

  toString(): string {
    return `TunLink(${this.tap ? 'TAP ' : ''}${this.name}, mtu ${this.currentMtu}${this.offload ? ', offload' : ''})`;
  }
}

