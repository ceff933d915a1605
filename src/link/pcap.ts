import { closeSync, openSync, writeSync } from 'node:fs';
import type { Link, PacketBatchHandler, PacketMeta } from './link.js';

/**
 * Writes packets to a classic pcap file that tcpdump, tshark and Wireshark open.
 *
 * Format (https://www.tcpdump.org/manpages/pcap-savefile.5.txt), all fields little-endian here:
 *   global header, 24 bytes: magic 0xa1b2c3d4 (microsecond timestamps), version 2.4,
 *     thiszone 0, sigfigs 0, snaplen, network = LINKTYPE_RAW (101: the packet starts
 *     with the IPv4 header, exactly what a TUN device carries) or LINKTYPE_ETHERNET (1:
 *     an Ethernet II frame, what a TAP device carries; `tcpdump -e` shows the MACs)
 *   per packet, 16 bytes: ts_sec, ts_usec, incl_len (bytes saved), orig_len (bytes on the wire)
 *   followed by incl_len bytes of packet.
 *
 * Records are collected in memory and written in large chunks: when BUFFER_LIMIT bytes are
 * pending, shortly after the last record (so a file being watched is at most FLUSH_DELAY_MS
 * behind), and on close().
 */
export const PCAP_MAGIC = 0xa1b2c3d4;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_SNAPLEN = 65535;
export const PCAP_GLOBAL_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;

const BUFFER_LIMIT = 64 * 1024;
const FLUSH_DELAY_MS = 250;

/** The 24-byte pcap global header (LINKTYPE_RAW unless told otherwise). */
export function pcapGlobalHeader(snaplen = PCAP_SNAPLEN, linktype = LINKTYPE_RAW): Uint8Array {
  const b = new Uint8Array(PCAP_GLOBAL_HEADER_LEN);
  const v = new DataView(b.buffer);
  v.setUint32(0, PCAP_MAGIC, true);
  v.setUint16(4, 2, true); // version_major
  v.setUint16(6, 4, true); // version_minor
  v.setInt32(8, 0, true); // thiszone: timestamps are UTC
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linktype, true);
  return b;
}

/** Wall-clock milliseconds with sub-millisecond precision (pcap stores microseconds). */
function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export class PcapWriter {
  private fd: number | undefined;
  private chunks: Uint8Array[] = [];
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Packets recorded so far. */
  packets = 0;

  private constructor(fd: number, linktype: number) {
    this.fd = fd;
    this.chunks.push(pcapGlobalHeader(PCAP_SNAPLEN, linktype));
    this.pending = PCAP_GLOBAL_HEADER_LEN;
    this.flush(); // a file that exists is a valid (empty) capture from the start
  }

  /**
   * Create (or truncate) `path` and write the global header. Throws like fs.openSync.
   * `linktype`: LINKTYPE_RAW for a TUN link, LINKTYPE_ETHERNET for a TAP link.
   */
  static open(path: string, linktype: number = LINKTYPE_RAW): PcapWriter {
    return new PcapWriter(openSync(path, 'w'), linktype);
  }

  /**
   * Record one packet. `timeMs` is wall-clock time in ms since the Unix epoch (default: now).
   * The bytes are copied, so the caller may reuse its buffer.
   */
  record(packet: Uint8Array, timeMs: number = wallClockMs()): void {
    if (this.fd === undefined) return;
    const incl = Math.min(packet.byteLength, PCAP_SNAPLEN);
    const rec = new Uint8Array(PCAP_RECORD_HEADER_LEN + incl);
    const v = new DataView(rec.buffer);
    let sec = Math.floor(timeMs / 1000);
    let usec = Math.round((timeMs - sec * 1000) * 1000);
    if (usec >= 1_000_000) {
      sec += 1;
      usec -= 1_000_000;
    }
    v.setUint32(0, sec >>> 0, true);
    v.setUint32(4, usec, true);
    v.setUint32(8, incl, true);
    v.setUint32(12, packet.byteLength, true);
    rec.set(packet.subarray(0, incl), PCAP_RECORD_HEADER_LEN);
    this.chunks.push(rec);
    this.pending += rec.byteLength;
    this.packets++;
    if (this.pending >= BUFFER_LIMIT) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, FLUSH_DELAY_MS);
      this.timer.unref(); // a pending flush never keeps the process alive; close() flushes
    }
  }

  /** Write everything recorded so far to the file (one write). */
  flush(): void {
    if (this.fd === undefined || this.pending === 0) return;
    const all = Buffer.concat(this.chunks, this.pending);
    this.chunks = [];
    this.pending = 0;
    let off = 0;
    while (off < all.byteLength) off += writeSync(this.fd, all, off);
  }

  /** Flush and close the file. Idempotent. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * A Link that records every packet passing through `link`, both directions, into `pcap`.
 * Closing the wrapper closes `link`; the PcapWriter stays the caller's to close.
 */
export function wrapLink(link: Link, pcap: PcapWriter): Link {
  // Offload passes through: super-segments are recorded as they cross the link (up to 64 KiB, with
  // the partial checksums the kernel completes), as tcpdump on an offloading interface shows them.
  return {
    get mtu() {
      return link.mtu;
    },
    get offload() {
      return link.offload;
    },
    onReceive(handler: PacketBatchHandler): void {
      link.onReceive((packets, meta) => {
        for (const p of packets) pcap.record(p);
        handler(packets, meta);
      });
    },
    send(packets: Uint8Array[], meta?: ReadonlyArray<PacketMeta | undefined>): void {
      for (const p of packets) pcap.record(p);
      link.send(packets, meta);
    },
    close(): void {
      link.close();
    },
  };
}
