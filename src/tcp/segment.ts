/**
 * TCP segment codec: header (RFC 9293 §3.1) and options (RFC 9293 §3.2, window
 * scale and timestamps RFC 7323, SACK RFC 2018).
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |          Source Port          |       Destination Port        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                        Sequence Number                        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                    Acknowledgment Number                      |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  Data |       |C|E|U|A|P|R|S|F|                               |
 *    | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *    |       |       |R|E|G|K|H|T|N|N|                               |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |           Checksum            |         Urgent Pointer        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                    [Options]                  |    [Padding]  |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                             data                              |
 *
 * This module only checks what the wire format itself requires (lengths, offsets,
 * checksum, port 0); a malformed option is ignored, not the segment (see parseOptions). Whether an option is allowed in a given
 * segment (MSS and window scale only on SYN, RFC 9293 §3.7.1 / RFC 7323 §2.2) is
 * the connection's decision.
 */
import { checksumFinish, checksumPartial, pseudoHeaderSum } from '../ip/checksum.js';

export const TCP_HEADER_LEN = 20;
/** Data offset is 4 bits of 32-bit words: at most 60 bytes, so at most 40 bytes of options. */
export const TCP_MAX_HEADER_LEN = 60;
export const TCP_PROTOCOL = 6;

export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20, ECE = 0x40, CWR = 0x80;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
export const OPT_EOL = 0, OPT_NOP = 1, OPT_MSS = 2, OPT_WSCALE = 3, OPT_SACK_PERMITTED = 4, OPT_SACK = 5, OPT_TIMESTAMP = 8;

/** Largest window shift a peer may ask for (RFC 7323 §2.3): 2^14 * 65535 < 2^30. */
export const MAX_WSCALE = 14;

export interface TcpOptions {
  /** Maximum segment size the sender can receive (RFC 9293 §3.7.1). */
  mss?: number;
  /** Window scale shift count, already capped at 14 on parse (RFC 7323 §2.3). */
  wscale?: number;
  /** The sender can receive SACK blocks (RFC 2018 §2). */
  sackPermitted?: boolean;
  /** TSval / TSecr (RFC 7323 §3). */
  timestamp?: { value: number; echo: number };
  /** SACK blocks as [left edge, right edge) sequence numbers (RFC 2018 §3). */
  sack?: Array<[number, number]>;
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Header length in bytes (the 4-bit field times 4). */
  dataOffset: number;
  /** CWR..FIN bits, see the flag constants. */
  flags: number;
  /** The raw 16-bit window field (not yet scaled). */
  window: number;
  checksum: number;
  urgentPointer: number;
  options: TcpOptions;
  /** Some option was malformed and ignored (see parseOptions); the segment itself is fine. */
  badOptions?: true;
  /** The data: a view into the packet buffer, not a copy. */
  payload: Uint8Array;
}

export const TCP_DROP_REASONS = ['truncated', 'bad-data-offset', 'bad-checksum', 'bad-ports'] as const;
export type TcpDropReason = (typeof TCP_DROP_REASONS)[number];

/**
 * Parse and validate a TCP segment. `buf` is the IP payload (TCP header + data);
 * `src` and `dst` are the IP addresses, needed for the pseudo-header checksum.
 * Never throws: anything malformed comes back as `{ error }`.
 */
export function parseTcp(
  buf: Uint8Array,
  src: number,
  dst: number,
  verifyChecksum = true,
): TcpSegment | { error: TcpDropReason } {
  const len = buf.length;
  if (len < TCP_HEADER_LEN) return { error: 'truncated' };

  const dataOffset = (buf[12]! >>> 4) * 4;
  if (dataOffset < TCP_HEADER_LEN || dataOffset > len) return { error: 'bad-data-offset' };

  if (verifyChecksum) {
    // Summing a segment together with its own checksum field gives 0xffff when intact,
    // i.e. 0 after the final complement (RFC 1071 §1, RFC 9293 §3.1 "Checksum").
    const sum = checksumPartial(buf, 0, len, pseudoHeaderSum(src, dst, TCP_PROTOCOL, len));
    if (checksumFinish(sum) !== 0) return { error: 'bad-checksum' };
  }

  const srcPort = (buf[0]! << 8) | buf[1]!;
  const dstPort = (buf[2]! << 8) | buf[3]!;
  // Port 0 is reserved; no real connection uses it (RFC 6335 §6).
  if (srcPort === 0 || dstPort === 0) return { error: 'bad-ports' };

  const seg: TcpSegment = {
    srcPort,
    dstPort,
    seq: readU32(buf, 4),
    ack: readU32(buf, 8),
    dataOffset,
    flags: buf[13]!,
    window: (buf[14]! << 8) | buf[15]!,
    checksum: (buf[16]! << 8) | buf[17]!,
    urgentPointer: (buf[18]! << 8) | buf[19]!,
    options: NO_OPTIONS,
    // Most segments of a short connection carry no data (SYN, ACK, FIN): one shared empty view
    // of the same kind instead of a new one each (a view costs about 100 bytes of heap).
    payload: dataOffset < len ? buf.subarray(dataOffset) : buf instanceof Buffer ? EMPTY_BUFFER : EMPTY_BYTES,
  };
  if (dataOffset > TCP_HEADER_LEN) parseOptions(buf, TCP_HEADER_LEN, dataOffset, seg);
  return seg;
}

/** The options of a segment that has none, shared (frozen: a parsed segment's options are read, never written). */
const NO_OPTIONS: TcpOptions = Object.freeze({});
const EMPTY_BUFFER = Buffer.alloc(0);
const EMPTY_BYTES = new Uint8Array(0);

function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}

/**
 * Options live in buf[start, end). RFC 9293 §3.2: an option is either one byte (EOL, NOP) or
 * kind, length, data, where length counts the kind and length bytes. Unknown kinds are skipped by
 * their length (MUST-6). A malformed option must not crash us (MUST-7); like Linux
 * (tcp_parse_options), we ignore it rather than the segment: a known option with the wrong
 * length is skipped by its length, and a length below 2 or past the header end ends the parsing
 * (what came before it is kept). `seg.badOptions` says that something was ignored, so it can be counted.
 * The options go into `seg` directly (no result object per segment).
 */
function parseOptions(buf: Uint8Array, start: number, end: number, seg: TcpSegment): void {
  const o: TcpOptions = {};
  let bad = false;
  let i = start;
  while (i < end) {
    const kind = buf[i]!;
    if (kind === OPT_EOL) break; // end of option list; the rest is padding
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    const optLen = i + 1 < end ? buf[i + 1]! : 0; // no room for the length byte: as a bad length
    if (optLen < 2 || i + optLen > end) {
      bad = true;
      break;
    }
    switch (kind) {
      case OPT_MSS:
        if (optLen === 4) o.mss = (buf[i + 2]! << 8) | buf[i + 3]!;
        else bad = true;
        break;
      case OPT_WSCALE:
        // RFC 7323 §2.3: a shift above 14 MUST be treated as 14.
        if (optLen === 3) o.wscale = Math.min(buf[i + 2]!, MAX_WSCALE);
        else bad = true;
        break;
      case OPT_SACK_PERMITTED:
        if (optLen === 2) o.sackPermitted = true;
        else bad = true;
        break;
      case OPT_SACK: {
        // RFC 2018 §3: 2 + 8n bytes, n >= 1 blocks of (left edge, right edge).
        if (optLen < 10 || (optLen - 2) % 8 !== 0) {
          bad = true;
          break;
        }
        const blocks: Array<[number, number]> = [];
        for (let b = i + 2; b < i + optLen; b += 8) blocks.push([readU32(buf, b), readU32(buf, b + 4)]);
        o.sack = blocks;
        break;
      }
      case OPT_TIMESTAMP:
        if (optLen === 10) o.timestamp = { value: readU32(buf, i + 2), echo: readU32(buf, i + 6) };
        else bad = true;
        break;
      default:
        break; // unknown option: skip it by its length
    }
    i += optLen;
  }
  seg.options = o;
  if (bad) seg.badOptions = true;
}

/*
 * Option layout on write. Every option is padded with NOPs to a 4-byte boundary so
 * the 32-bit fields stay aligned, the way Linux lays them out (a SYN from both is
 * "mss, sackOK, TS, nop, wscale" = 20 bytes):
 *
 *   MSS                       kind len mss mss                      4 bytes
 *   SACK-permitted + TS       kind len | kind len val*4 ecr*4      12 bytes
 *   TS alone                  NOP NOP  | kind len val*4 ecr*4      12 bytes
 *   SACK-permitted alone      NOP NOP kind len                      4 bytes
 *   window scale              NOP kind len shift                    4 bytes
 *   SACK (n blocks)           NOP NOP kind len (left right)*n   4 + 8n bytes
 *
 * The option space is 40 bytes; SACK blocks that do not fit are left out (the
 * caller lists the most important block first, RFC 2018 §4).
 */

const MAX_OPTIONS_LEN = TCP_MAX_HEADER_LEN - TCP_HEADER_LEN;

/** Bytes the non-SACK options take. */
function fixedOptionsLength(o: TcpOptions): number {
  let n = 0;
  if (o.mss !== undefined) n += 4;
  if (o.timestamp !== undefined) n += 12; // with or without sackOK sharing its padding
  else if (o.sackPermitted) n += 4;
  if (o.wscale !== undefined) n += 4;
  return n;
}

/** How many of `o.sack`'s blocks fit after `used` bytes of other options. */
function sackBlocksThatFit(o: TcpOptions, used: number): number {
  if (o.sack === undefined || o.sack.length === 0) return 0;
  const room = Math.floor((MAX_OPTIONS_LEN - used - 4) / 8);
  return Math.max(0, Math.min(o.sack.length, room));
}

/** Bytes the options take on the wire, padded to a multiple of 4. */
export function optionsLength(o: TcpOptions): number {
  const fixed = fixedOptionsLength(o);
  const blocks = sackBlocksThatFit(o, fixed);
  return fixed + (blocks > 0 ? 4 + 8 * blocks : 0);
}

export interface TcpHeaderFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  /** The 16-bit window field as sent (already scaled down by the caller). */
  window: number;
  urgentPointer?: number;
  options?: TcpOptions;
}

/**
 * Write a TCP header with options at buf[off..] and fill in the checksum.
 * The payload must already be in place right after the header, i.e. at
 * buf[off + TCP_HEADER_LEN + optionsLength(options) ..], `payloadLength` bytes long,
 * because the checksum covers it. Returns the header length in bytes.
 * Throws RangeError for values that do not fit their fields (a bug in the caller,
 * never something a peer can cause).
 * `partialChecksum`: for a link that completes checksums (offload, VIRTIO_NET_HDR_F_NEEDS_CSUM),
 * store only the folded pseudo-header sum and leave the header and data to the device, so the
 * payload is never read here.
 */
export function writeTcp(
  buf: Uint8Array,
  off: number,
  f: TcpHeaderFields,
  payloadLength: number,
  src: number,
  dst: number,
  partialChecksum = false,
): number {
  const o = f.options ?? NO_OPTIONS;
  const fixed = fixedOptionsLength(o);
  const blocks = sackBlocksThatFit(o, fixed);
  const hlen = TCP_HEADER_LEN + fixed + (blocks > 0 ? 4 + 8 * blocks : 0);
  const total = hlen + payloadLength;
  const urgentPointer = f.urgentPointer ?? 0;
  if (!isU16(f.srcPort) || !isU16(f.dstPort) || !isU16(f.window) || !isU16(urgentPointer)) {
    throw new RangeError('writeTcp: port, window and urgent pointer must be 16-bit values');
  }
  if (o.mss !== undefined && !isU16(o.mss)) throw new RangeError('writeTcp: mss must be a 16-bit value');
  if (o.wscale !== undefined && !(Number.isInteger(o.wscale) && o.wscale >= 0 && o.wscale <= MAX_WSCALE)) {
    throw new RangeError('writeTcp: wscale must be 0..14 (RFC 7323 §2.3)');
  }
  if (!(off >= 0 && payloadLength >= 0 && off + total <= buf.length && total <= 0xffff)) {
    throw new RangeError('writeTcp: buffer too small for header and payload');
  }

  writeU16(buf, off, f.srcPort);
  writeU16(buf, off + 2, f.dstPort);
  writeU32(buf, off + 4, f.seq);
  writeU32(buf, off + 8, f.ack);
  buf[off + 12] = (hlen / 4) << 4; // data offset in 32-bit words; reserved bits zero
  buf[off + 13] = f.flags;
  writeU16(buf, off + 14, f.window);
  writeU16(buf, off + 16, 0); // checksum: zero while summing
  writeU16(buf, off + 18, urgentPointer);

  let i = off + TCP_HEADER_LEN;
  if (o.mss !== undefined) {
    buf[i++] = OPT_MSS;
    buf[i++] = 4;
    writeU16(buf, i, o.mss);
    i += 2;
  }
  if (o.timestamp !== undefined) {
    if (o.sackPermitted) {
      buf[i++] = OPT_SACK_PERMITTED;
      buf[i++] = 2;
    } else {
      buf[i++] = OPT_NOP;
      buf[i++] = OPT_NOP;
    }
    buf[i++] = OPT_TIMESTAMP;
    buf[i++] = 10;
    writeU32(buf, i, o.timestamp.value);
    writeU32(buf, i + 4, o.timestamp.echo);
    i += 8;
  } else if (o.sackPermitted) {
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_SACK_PERMITTED;
    buf[i++] = 2;
  }
  if (o.wscale !== undefined) {
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_WSCALE;
    buf[i++] = 3;
    buf[i++] = o.wscale;
  }
  if (blocks > 0) {
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_NOP;
    buf[i++] = OPT_SACK;
    buf[i++] = 2 + 8 * blocks;
    for (let b = 0; b < blocks; b++) {
      const [left, right] = o.sack![b]!;
      writeU32(buf, i, left);
      writeU32(buf, i + 4, right);
      i += 8;
    }
  }

  if (partialChecksum) {
    writeU16(buf, off + 16, pseudoHeaderSum(src, dst, TCP_PROTOCOL, total));
    return hlen;
  }
  // RFC 9293 §3.1: the checksum covers the pseudo-header, the header and the data.
  const sum = checksumPartial(buf, off, off + total, pseudoHeaderSum(src, dst, TCP_PROTOCOL, total));
  writeU16(buf, off + 16, checksumFinish(sum));
  return hlen;
}

function isU16(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

/** SEG.LEN (RFC 9293 §3.4): data bytes plus one each for SYN and FIN. */
export function segmentLength(s: Pick<TcpSegment, 'flags' | 'payload'>): number {
  return s.payload.length + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0);
}

/** Flag letters in tcpdump's order; ACK is '.'. */
const FLAG_LETTERS: Array<[number, string]> = [
  [FIN, 'F'], [SYN, 'S'], [RST, 'R'], [PSH, 'P'], [ACK, '.'], [URG, 'U'], [ECE, 'E'], [CWR, 'W'],
];

/**
 * One line in packetdrill/tcpdump style, absolute sequence numbers:
 *   "S. 1000:1000(0) ack 5001 win 65535 <mss 1460,sackOK,TS val 7 ecr 3,wscale 7>"
 * `start:end(len)` counts data bytes only; `ack` is shown when the ACK flag is set.
 */
export function formatSegment(s: TcpSegment): string {
  let flags = '';
  for (const [bit, letter] of FLAG_LETTERS) if (s.flags & bit) flags += letter;
  const len = s.payload.length;
  let line = `${flags || 'none'} ${s.seq}:${(s.seq + len) >>> 0}(${len})`;
  if (s.flags & ACK) line += ` ack ${s.ack}`;
  line += ` win ${s.window}`;
  if (s.flags & URG) line += ` urg ${s.urgentPointer}`;
  const opts = formatOptions(s.options);
  if (opts) line += ` <${opts}>`;
  return line;
}

/** Options as tcpdump prints them: `mss 1460,sackOK,TS val 1 ecr 0,wscale 7`. */
export function formatOptions(o: TcpOptions): string {
  const parts: string[] = [];
  if (o.mss !== undefined) parts.push(`mss ${o.mss}`);
  if (o.sackPermitted) parts.push('sackOK');
  if (o.timestamp !== undefined) parts.push(`TS val ${o.timestamp.value} ecr ${o.timestamp.echo}`);
  if (o.wscale !== undefined) parts.push(`wscale ${o.wscale}`);
  if (o.sack !== undefined) parts.push(`sack ${o.sack.map(([l, r]) => `${l}:${r}`).join(' ')}`);
  return parts.join(',');
}
