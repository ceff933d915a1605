/**
 * ICMP for IPv4 (RFC 792), the host side (RFC 1122 section 3.2.2):
 *  - answer Echo Request with Echo Reply (ping);
 *  - count the Echo Replies and errors we receive;
 *  - send Destination Unreachable / Time Exceeded about datagrams we could not deliver,
 *    obeying the rules about when an error must NOT be sent, and rate-limited.
 *
 * Every ICMP message starts with the same 8 bytes:
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |     Type      |     Code      |          Checksum             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  rest of header: Identifier + Sequence Number (echo), unused  |
 *    |  (errors), or next-hop MTU (fragmentation needed)             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |  data: echo payload, or the offending IP header + 8 bytes     |
 *
 * The checksum covers the whole ICMP message (header and data).
 */
import type { Logger } from 'pino';
import { isMulticast, isUnicastSource, readIpv4 } from './addr.js';
import type { Ipv4Addr } from './addr.js';
import { internetChecksum } from './checksum.js';
import { IPV4_HEADER_LEN, MIN_MTU, PROTO_ICMP, writeIpv4Header } from './ipv4.js';
import type { Ipv4Header } from './ipv4.js';
import type { IcmpErrorInfo } from './layer.js';
import { TokenBucket } from './stats.js';
import type { Counters } from './stats.js';

export const ICMP_HEADER_LEN = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;

/** Destination Unreachable codes (RFC 792). */
export const UNREACH_NET = 0;
export const UNREACH_HOST = 1;
export const UNREACH_PROTOCOL = 2;
export const UNREACH_PORT = 3;
export const UNREACH_FRAG_NEEDED = 4;
/** Time Exceeded codes (RFC 792). */
export const TIME_EXCEEDED_TTL = 0;
export const TIME_EXCEEDED_REASSEMBLY = 1;

/** Query (informational) types. Every other type, known or not, is treated as an error
 *  message, so we never answer an error with an error (RFC 1122 section 3.2.2). */
const QUERY_TYPES = new Set([0, 8, 9, 10, 13, 14, 15, 16, 17, 18]);

export interface IcmpMessage {
  type: number;
  code: number;
  checksum: number;
  /** The 32-bit "rest of header" word. */
  restOfHeader: number;
  /** Everything after the 8-byte header (a view). */
  data: Uint8Array;
}

export type IcmpDropReason = 'truncated' | 'bad-checksum';

/** Why the datagram an ICMP error quotes cannot be ours, or cannot be understood. */
export type IcmpQuoteError = 'quote-truncated' | 'quote-bad-header' | 'quote-fragment' | 'quote-not-ours';

/** RFC 1191 §7 plateaus: MTUs of common links, for a fragmentation-needed message without one. */
const MTU_PLATEAUS = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, MIN_MTU];

/**
 * The datagram an ICMP error message (`m`: Destination Unreachable, Time Exceeded, Parameter Problem)
 * quotes: its IPv4 header and at least 8 bytes of its data (RFC 792, RFC 1122 section 3.2.2). It must
 * be a datagram we could have sent: a well-formed header with our address as the source, and not a
 * later fragment (whose data holds no transport header). The quoted data is cut to the quoted
 * datagram's own length (the rest is padding). Never throws.
 */
export function parseQuotedDatagram(m: IcmpMessage, ourAddr: Ipv4Addr): IcmpErrorInfo | { error: IcmpQuoteError } {
  const d = m.data;
  if (d.length < IPV4_HEADER_LEN) return { error: 'quote-truncated' };
  const ihl = (d[0]! & 0x0f) * 4;
  const totalLength = (d[2]! << 8) | d[3]!;
  if (d[0]! >> 4 !== 4 || ihl < IPV4_HEADER_LEN || totalLength < ihl + 8) return { error: 'quote-bad-header' };
  if (d.length < ihl + 8) return { error: 'quote-truncated' };
  if ((((d[6]! & 0x1f) << 8) | d[7]!) !== 0) return { error: 'quote-fragment' };
  const src = readIpv4(d, 12);
  if (src !== ourAddr) return { error: 'quote-not-ours' };
  const dst = readIpv4(d, 16);
  let mtu = 0;
  if (m.type === ICMP_DEST_UNREACHABLE && m.code === UNREACH_FRAG_NEEDED) {
    // RFC 1191 §4: the next-hop MTU is the low 16 bits; a router from before RFC 1191 sends 0, and
    // §7 says to guess the next plateau below the length of the datagram that did not fit.
    mtu = m.restOfHeader & 0xffff || (MTU_PLATEAUS.find((p) => p < totalLength) ?? MIN_MTU);
  }
  return { type: m.type, code: m.code, mtu, src, dst, protocol: d[9]!, quoted: d.subarray(ihl, Math.min(d.length, totalLength)) };
}

/** Decode and checksum-verify an ICMP message (the IPv4 payload). Never throws. */
export function parseIcmp(buf: Uint8Array): IcmpMessage | { error: IcmpDropReason } {
  if (buf.length < ICMP_HEADER_LEN) return { error: 'truncated' };
  if (internetChecksum(buf) !== 0) return { error: 'bad-checksum' };
  return {
    type: buf[0]!,
    code: buf[1]!,
    checksum: (buf[2]! << 8) | buf[3]!,
    restOfHeader: ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0,
    data: buf.subarray(ICMP_HEADER_LEN),
  };
}

/** Echo messages split the rest of header into Identifier and Sequence Number. */
export function echoIdentifier(m: IcmpMessage): number {
  return m.restOfHeader >>> 16;
}
export function echoSequence(m: IcmpMessage): number {
  return m.restOfHeader & 0xffff;
}

/**
 * Write an ICMP header at buf[off]; the `dataLength` bytes of data must already sit right
 * after it. Computes the checksum over header and data.
 */
export function writeIcmp(
  buf: Uint8Array,
  off: number,
  f: { type: number; code: number; restOfHeader?: number },
  dataLength: number,
): void {
  const rest = f.restOfHeader ?? 0;
  buf[off] = f.type;
  buf[off + 1] = f.code;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = rest >>> 24;
  buf[off + 5] = (rest >>> 16) & 0xff;
  buf[off + 6] = (rest >>> 8) & 0xff;
  buf[off + 7] = rest & 0xff;
  const sum = internetChecksum(buf, off, off + ICMP_HEADER_LEN + dataLength);
  buf[off + 2] = sum >>> 8;
  buf[off + 3] = sum & 0xff;
}

/** What the ICMP handler needs from the IP layer. */
export interface IcmpHost {
  readonly addr: Ipv4Addr;
  readonly mtu: number;
  send(packet: Uint8Array, dst: Ipv4Addr, protocol: number, now: number, opts?: { df?: boolean }): void;
  /** Hand a checked ICMP error to the transport that sent the quoted datagram. */
  deliverIcmpError?(err: IcmpErrorInfo, now: number): void;
}

export interface IcmpOptions {
  /** Error messages per second (token bucket). Default 100. */
  errorsPerSecond?: number;
  /** Bucket size: errors that may go out back to back. Default 50. */
  errorBurst?: number;
  log?: Logger | undefined;
}

export class Icmp {
  private readonly limiter: TokenBucket;
  private readonly log: Logger | undefined;

  constructor(
    private readonly host: IcmpHost,
    private readonly counters: Counters,
    opts: IcmpOptions = {},
  ) {
    this.limiter = new TokenBucket(opts.errorsPerSecond ?? 100, opts.errorBurst ?? 50);
    this.log = opts.log;
  }

  /** An ICMP message addressed to us (`header` is its IP header, `payload` the message). */
  receive(header: Ipv4Header, payload: Uint8Array, now: number): void {
    this.counters.inc('icmp.in');
    const msg = parseIcmp(payload);
    if ('error' in msg) {
      this.counters.inc('icmp.drop.' + msg.error);
      if (this.log?.isLevelEnabled('debug')) this.log.debug({ reason: msg.error }, 'icmp drop');
      return;
    }
    switch (msg.type) {
      case ICMP_ECHO_REQUEST:
        this.answerEcho(header, payload, now);
        break;
      case ICMP_ECHO_REPLY:
        this.counters.inc('icmp.echo-reply.in');
        break;
      case ICMP_DEST_UNREACHABLE:
        this.counters.inc('icmp.unreachable.in');
        this.deliverError(msg, now);
        break;
      case ICMP_TIME_EXCEEDED:
        this.counters.inc('icmp.time-exceeded.in');
        this.deliverError(msg, now);
        break;
      case ICMP_PARAMETER_PROBLEM:
        this.counters.inc('icmp.parameter-problem.in');
        this.deliverError(msg, now);
        break;
      default:
        this.counters.inc('icmp.other.in');
    }
  }

  /** An error about a datagram we sent: checked, then up to its transport (RFC 1122 section 3.2.2). */
  private deliverError(msg: IcmpMessage, now: number): void {
    const err = parseQuotedDatagram(msg, this.host.addr);
    if ('error' in err) {
      this.counters.inc('icmp.drop.bad-quote');
      if (this.log?.isLevelEnabled('debug')) this.log.debug({ type: msg.type, code: msg.code, reason: err.error }, 'icmp error dropped');
      return;
    }
    this.host.deliverIcmpError?.(err, now);
  }

  /**
   * RFC 792 Echo Reply: "the source and destination addresses are simply reversed, the
   * type code changed to 0, and the checksum recomputed"; identifier, sequence number
   * and data are returned unchanged.
   */
  private answerEcho(header: Ipv4Header, payload: Uint8Array, now: number): void {
    this.counters.inc('icmp.echo');
    const reply = new Uint8Array(IPV4_HEADER_LEN + payload.length);
    reply.set(payload, IPV4_HEADER_LEN);
    reply[IPV4_HEADER_LEN] = ICMP_ECHO_REPLY;
    reply[IPV4_HEADER_LEN + 2] = 0;
    reply[IPV4_HEADER_LEN + 3] = 0;
    const sum = internetChecksum(reply, IPV4_HEADER_LEN);
    reply[IPV4_HEADER_LEN + 2] = sum >>> 8;
    reply[IPV4_HEADER_LEN + 3] = sum & 0xff;
    // A big request (which arrived fragmented) must still be answered: let IP fragment it.
    const df = reply.length <= this.host.mtu;
    this.host.send(reply, header.src, PROTO_ICMP, now, { df });
  }

  /**
   * Send an ICMP error about a datagram we received: its IP header followed by the first
   * 8 bytes of its data (RFC 792), enough for the sender to find the transport ports.
   * The quoted header is re-serialised from `header` (20 bytes, options left out).
   */
  sendError(type: number, code: number, header: Ipv4Header, payload: Uint8Array, now: number, restOfHeader = 0): void {
    const why = this.mustNotSendError(header, payload);
    if (why !== undefined) {
      this.counters.inc('icmp.error.suppressed');
      if (this.log?.isLevelEnabled('debug')) this.log.debug({ type, code, why }, 'icmp error suppressed');
      return;
    }
    if (!this.limiter.take(now)) {
      this.counters.inc('icmp.error.ratelimited');
      return;
    }
    const quoted = Math.min(8, payload.length);
    const icmpLen = ICMP_HEADER_LEN + IPV4_HEADER_LEN + quoted;
    const packet = new Uint8Array(IPV4_HEADER_LEN + icmpLen);
    const data = IPV4_HEADER_LEN + ICMP_HEADER_LEN;
    writeIpv4Header(packet, data, header);
    packet.set(payload.subarray(0, quoted), data + IPV4_HEADER_LEN);
    writeIcmp(packet, IPV4_HEADER_LEN, { type, code, restOfHeader }, IPV4_HEADER_LEN + quoted);
    this.counters.inc(type === ICMP_DEST_UNREACHABLE ? 'icmp.unreachable.out' : type === ICMP_TIME_EXCEEDED ? 'icmp.time-exceeded.out' : 'icmp.error.out');
    this.host.send(packet, header.src, PROTO_ICMP, now);
  }

  /** RFC 1122 section 3.2.2: the datagrams an ICMP error MUST NOT be sent about. */
  private mustNotSendError(header: Ipv4Header, payload: Uint8Array): string | undefined {
    if (header.protocol === PROTO_ICMP && (payload.length === 0 || !QUERY_TYPES.has(payload[0]!))) {
      return 'about-icmp-error';
    }
    if (header.dst === 0xffffffff || isMulticast(header.dst)) return 'broadcast-or-multicast';
    if (header.fragmentOffset !== 0) return 'non-first-fragment';
    if (!isUnicastSource(header.src)) return 'source-not-a-host';
    return undefined;
  }
}
