/**
 * Packets for the packetdrill runner: inbound script lines become real IPv4/TCP bytes, and
 * what the stack sends is decoded and matched against outbound script lines.
 *
 * Numbering (packetdrill's convention): the remote side's sequence numbers are the script's
 * numbers as written (its ISN is what the script's SYN says); the stack's are relative to its
 * ISN, learned from the first SYN it sends (0 before that). So an inbound `ack N` goes on the
 * wire as ISN+N, and an outbound `seq a:b` is compared with seq−ISN.
 *
 * Matching an outbound line (packetdrill's rules): flags exactly, sequence range, `ack` when
 * the ACK flag is set, `win` and `urg` only when written, options byte for byte in order (NOPs
 * included) unless written `<...>`; no options written means none may be sent. Timestamps are
 * the exception: the runner maps their values between script and live (./timestamps.ts).
 * SACK blocks: an inbound line's acknowledge the stack's data (relative to its ISN, like `ack`);
 * an outbound line's acknowledge the script's data (as written).
 */
import { checksumFinish, checksumPartial, pseudoHeaderSum } from '../ip/checksum.js';
import { IPV4_HEADER_LEN, PROTO_ICMP, PROTO_TCP, parseIpv4, writeIpv4Header } from '../ip/ipv4.js';
import { ICMP_HEADER_LEN, writeIcmp } from '../ip/icmp.js';
import type { PacketSpec, TcpOpt } from './parse.js';

export const TCP_FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, '.': 0x10, U: 0x20, E: 0x40, W: 0x80 };
const FLAG_ORDER = 'SFRPU.EW'; // how flags are printed (packetdrill prints e.g. "S.", "F.", "P.")

export function flagBits(letters: string): number {
  let bits = 0;
  for (const c of letters) bits |= TCP_FLAG_BITS[c] ?? 0;
  return bits;
}

export function flagLetters(bits: number): string {
  let s = '';
  for (const c of FLAG_ORDER) if (bits & TCP_FLAG_BITS[c]!) s += c;
  return s || '-';
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/** Encode options exactly as written, padded with EOL to a multiple of 4 bytes. */
export function encodeOptions(opts: TcpOpt[], ourIsn: number): Uint8Array {
  const bytes: number[] = [];
  for (const o of opts) {
    switch (o.kind) {
      case 'nop':
        bytes.push(1);
        break;
      case 'eol':
        bytes.push(0);
        break;
      case 'mss':
        bytes.push(2, 4, o.value >>> 8, o.value & 0xff);
        break;
      case 'wscale':
        bytes.push(3, 3, o.value);
        break;
      case 'sackOK':
        bytes.push(4, 2);
        break;
      case 'sack':
        bytes.push(5, 2 + 8 * o.blocks.length);
        // SACK blocks acknowledge the stack's data: relative to its ISN, like `ack`.
        for (const [l, r] of o.blocks) bytes.push(...u32Bytes((ourIsn + l) >>> 0), ...u32Bytes((ourIsn + r) >>> 0));
        break;
      case 'TS':
        bytes.push(8, 10, ...u32Bytes(o.val), ...u32Bytes(o.ecr));
        break;
    }
  }
  while (bytes.length % 4 !== 0) bytes.push(0);
  if (bytes.length > 40) throw new Error(`TCP options take ${bytes.length} bytes; at most 40 fit`);
  return Uint8Array.from(bytes);
}

/**
 * Decode the options of a segment the stack sent into the script's vocabulary; undefined if
 * malformed. Trailing EOL padding is dropped. Its SACK blocks acknowledge the remote side's data,
 * whose numbers are the script's as written (no offset, unlike an inbound line's blocks).
 */
export function decodeOptions(buf: Uint8Array): TcpOpt[] | undefined {
  const out: TcpOpt[] = [];
  let i = 0;
  while (i < buf.length) {
    const kind = buf[i]!;
    if (kind === 0) {
      // EOL ends the list; what follows is padding.
      out.push({ kind: 'eol' });
      break;
    }
    if (kind === 1) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    if (i + 1 >= buf.length) return undefined;
    const len = buf[i + 1]!;
    if (len < 2 || i + len > buf.length) return undefined;
    const at = (k: number) => buf[i + k]!;
    if (kind === 2 && len === 4) out.push({ kind: 'mss', value: (at(2) << 8) | at(3) });
    else if (kind === 3 && len === 3) out.push({ kind: 'wscale', value: at(2) });
    else if (kind === 4 && len === 2) out.push({ kind: 'sackOK' });
    else if (kind === 8 && len === 10) out.push({ kind: 'TS', val: readU32(buf, i + 2), ecr: readU32(buf, i + 6) });
    else if (kind === 5 && (len - 2) % 8 === 0) {
      const blocks: Array<[number, number]> = [];
      for (let k = i + 2; k < i + len; k += 8) blocks.push([readU32(buf, k), readU32(buf, k + 4)]);
      out.push({ kind: 'sack', blocks });
    } else return undefined;
    i += len;
  }
  // Trailing EOL padding is not part of what a script writes.
  while (out.length > 0 && out[out.length - 1]!.kind === 'eol') out.pop();
  return out;
}

export function formatOpts(opts: TcpOpt[]): string {
  return opts
    .map((o) => {
      switch (o.kind) {
        case 'nop':
        case 'eol':
        case 'sackOK':
          return o.kind;
        case 'mss':
        case 'wscale':
          return `${o.kind} ${o.value}`;
        case 'sack':
          return `sack ${o.blocks.map(([l, r]) => `${l}:${r}`).join(' ')}`;
        case 'TS':
          return `TS val ${o.val} ecr ${o.ecr}`;
      }
    })
    .join(',');
}

// ---------------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------------

export interface Flow {
  localAddr: number;
  remoteAddr: number;
  localPort: number;
  remotePort: number;
}

/** Build the IPv4 packet for an inbound script line. Payload bytes are zeros (scripts use `...`). */
export function buildInbound(p: PacketSpec, flow: Flow, ourIsn: number, ipId: number): Uint8Array {
  const opts = Array.isArray(p.options) ? encodeOptions(p.options, ourIsn) : new Uint8Array(0);
  const tcpLen = 20 + opts.length + p.len;
  const packet = new Uint8Array(IPV4_HEADER_LEN + tcpLen);
  const t = IPV4_HEADER_LEN;
  const flags = flagBits(p.flags);
  packet[t] = flow.remotePort >>> 8;
  packet[t + 1] = flow.remotePort & 0xff;
  packet[t + 2] = flow.localPort >>> 8;
  packet[t + 3] = flow.localPort & 0xff;
  packet.set(u32Bytes(p.start), t + 4);
  packet.set(u32Bytes(flags & TCP_FLAG_BITS['.']! ? (ourIsn + (p.ack ?? 0)) >>> 0 : 0), t + 8);
  packet[t + 12] = ((20 + opts.length) / 4) << 4;
  packet[t + 13] = flags;
  const win = p.win ?? 65535;
  packet[t + 14] = win >>> 8;
  packet[t + 15] = win & 0xff;
  const urg = p.urg ?? 0;
  packet[t + 18] = urg >>> 8;
  packet[t + 19] = urg & 0xff;
  packet.set(opts, t + 20);
  const sum = checksumFinish(checksumPartial(packet, t, t + tcpLen, pseudoHeaderSum(flow.remoteAddr, flow.localAddr, PROTO_TCP, tcpLen)));
  packet[t + 16] = sum >>> 8;
  packet[t + 17] = sum & 0xff;
  writeIpv4Header(packet, 0, { totalLength: packet.length, id: ipId & 0xffff, df: true, protocol: PROTO_TCP, src: flow.remoteAddr, dst: flow.localAddr });
  return packet;
}

const ICMP_TYPES: Record<string, { type: number; codes: Record<string, number> }> = {
  unreachable: {
    type: 3,
    codes: { net_unreachable: 0, host_unreachable: 1, protocol_unreachable: 2, port_unreachable: 3, frag_needed: 4, source_route_failed: 5 },
  },
  time_exceeded: { type: 11, codes: { ttl_exceeded: 0, frag_reassembly_time_exceeded: 1 } },
};

/**
 * An inbound ICMP error quoting a segment the stack sent (`icmp unreachable frag_needed mtu
 * 1200 [1:1461(1460)]`): the quoted IPv4 header plus the first 8 bytes of TCP (RFC 792).
 * Returns a reason string when the type or code is not one the runner knows.
 */
export function buildIcmpError(
  type: string,
  code: string | undefined,
  mtu: number | undefined,
  quotedSeq: number,
  flow: Flow,
  ipId: number,
): Uint8Array | string {
  const t = ICMP_TYPES[type];
  if (!t) return `ICMP type '${type}'`;
  const c = code === undefined ? 0 : t.codes[code];
  if (c === undefined) return `ICMP code '${code}'`;
  const quoted = new Uint8Array(IPV4_HEADER_LEN + 8);
  writeIpv4Header(quoted, 0, { totalLength: IPV4_HEADER_LEN + 20, id: 0, df: true, protocol: PROTO_TCP, src: flow.localAddr, dst: flow.remoteAddr });
  quoted[20] = flow.localPort >>> 8;
  quoted[21] = flow.localPort & 0xff;
  quoted[22] = flow.remotePort >>> 8;
  quoted[23] = flow.remotePort & 0xff;
  quoted.set(u32Bytes(quotedSeq), 24);
  const packet = new Uint8Array(IPV4_HEADER_LEN + ICMP_HEADER_LEN + quoted.length);
  packet.set(quoted, IPV4_HEADER_LEN + ICMP_HEADER_LEN);
  writeIcmp(packet, IPV4_HEADER_LEN, { type: t.type, code: c, restOfHeader: mtu !== undefined ? mtu & 0xffff : 0 }, quoted.length);
  writeIpv4Header(packet, 0, { totalLength: packet.length, id: ipId & 0xffff, protocol: PROTO_ICMP, src: flow.remoteAddr, dst: flow.localAddr });
  return packet;
}

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

/** A TCP segment the stack sent, decoded; numbers are absolute. */
export interface OutSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  win: number;
  urg: number;
  options: TcpOpt[] | undefined;
  len: number;
  checksumOk: boolean;
}

/** A packet the stack sent, at virtual time `at` (script ms). */
export interface Captured {
  at: number;
  seg: OutSegment | undefined;
  /** For a non-TCP packet: what it was. */
  other?: string;
}

export function decodeOutbound(packet: Uint8Array, at: number): Captured {
  const ip = parseIpv4(packet);
  if ('error' in ip) return { at, seg: undefined, other: `a malformed IPv4 packet (${ip.error})` };
  if (ip.header.protocol !== PROTO_TCP) {
    const b = ip.payload;
    return { at, seg: undefined, other: ip.header.protocol === PROTO_ICMP ? `icmp type ${b[0]} code ${b[1]}` : `IP protocol ${ip.header.protocol}` };
  }
  const b = ip.payload;
  if (b.length < 20) return { at, seg: undefined, other: 'a truncated TCP segment' };
  const off = (b[12]! >>> 4) * 4;
  if (off < 20 || off > b.length) return { at, seg: undefined, other: 'a TCP segment with a bad data offset' };
  const sum = checksumFinish(checksumPartial(b, 0, b.length, pseudoHeaderSum(ip.header.src, ip.header.dst, PROTO_TCP, b.length)));
  return {
    at,
    seg: {
      srcPort: (b[0]! << 8) | b[1]!,
      dstPort: (b[2]! << 8) | b[3]!,
      seq: readU32(b, 4),
      ack: readU32(b, 8),
      flags: b[13]!,
      win: (b[14]! << 8) | b[15]!,
      urg: (b[18]! << 8) | b[19]!,
      options: decodeOptions(b.subarray(20, off)),
      len: b.length - off,
      checksumOk: sum === 0,
    },
  };
}

/** The segment as a script line, numbered relative to the stack's ISN (and its TSval in script space with `tsVal`). */
export function formatOut(s: OutSegment, ourIsn: number, tsVal?: (live: number) => number): string {
  const start = (s.seq - ourIsn) >>> 0;
  let text = `${flagLetters(s.flags)} ${start}:${(start + s.len) >>> 0}(${s.len})`;
  if (s.flags & TCP_FLAG_BITS['.']!) text += ` ack ${s.ack}`;
  text += ` win ${s.win}`;
  if (s.flags & TCP_FLAG_BITS['U']!) text += ` urg ${s.urg}`;
  if (s.options === undefined) text += ' <malformed options>';
  else if (s.options.length > 0) text += ` <${formatOpts(tsVal ? s.options.map((o) => (o.kind === 'TS' ? { ...o, val: tsVal(o.val) } : o)) : s.options)}>`;
  return text;
}

export function formatSpec(p: PacketSpec): string {
  let text = `${p.flags} ${p.start}:${p.end}(${p.len})`;
  if (p.ack !== undefined) text += ` ack ${p.ack}`;
  if (p.win !== undefined) text += ` win ${p.win}`;
  if (p.urg !== undefined) text += ` urg ${p.urg}`;
  if (p.options === 'any') text += ' <...>';
  else if (p.options && p.options.length > 0) text += ` <${formatOpts(p.options)}>`;
  return text;
}

/**
 * Compare one expected outbound line with what the stack sent. `segs` are the consecutive
 * segments available from the first unmatched one; when the line expects more payload than
 * the first carries, following contiguous segments are joined (packetdrill sees a TSO/GSO
 * super-packet where netstack sends MSS-sized segments). Returns how many segments the line
 * consumed, or a reason for the mismatch.
 */
export function matchOutbound(
  want: PacketSpec,
  segs: OutSegment[],
  ourIsn: number,
  flow: { localPort: number; remotePort: number },
  ts?: TsCheck,
): { consumed: number } | { mismatch: string } {
  const first = segs[0];
  if (!first) return { mismatch: 'nothing was sent' };
  if (!first.checksumOk) return { mismatch: 'the TCP checksum is wrong' };
  if (first.srcPort !== flow.localPort || first.dstPort !== flow.remotePort) {
    return { mismatch: `ports ${first.srcPort} > ${first.dstPort}, expected ${flow.localPort} > ${flow.remotePort}` };
  }
  const wantBits = want.flags === '-' ? 0 : flagBits(want.flags);
  let flags = first.flags;
  let len = first.len;
  let consumed = 1;
  const start = (first.seq - ourIsn) >>> 0;
  // Join contiguous data segments with the same ACK while the line wants more.
  while (len < want.len && consumed < segs.length) {
    const next = segs[consumed]!;
    if (((next.seq - ourIsn) >>> 0) !== ((start + len) >>> 0) || next.ack !== first.ack || next.len === 0) break;
    if (next.flags & (TCP_FLAG_BITS['S']! | TCP_FLAG_BITS['R']!)) break;
    flags |= next.flags;
    len += next.len;
    consumed++;
    if (next.flags & TCP_FLAG_BITS['F']!) break;
  }
  if (flags !== wantBits) return { mismatch: `flags ${flagLetters(flags)}, expected ${want.flags}` };
  if (start !== want.start || len !== want.len) {
    return { mismatch: `sequence ${start}:${(start + len) >>> 0}(${len}), expected ${want.start}:${want.end}(${want.len})` };
  }
  if (wantBits & TCP_FLAG_BITS['.']! && want.ack !== undefined && first.ack !== want.ack) return { mismatch: `ack ${first.ack}, expected ${want.ack}` };
  if (want.win !== undefined && first.win !== want.win) return { mismatch: `win ${first.win}, expected ${want.win}` };
  if (want.urg !== undefined && first.urg !== want.urg) return { mismatch: `urg ${first.urg}, expected ${want.urg}` };
  if (want.options !== 'any') {
    const mismatch = compareOptions(want.options ?? [], first.options, ts);
    if (mismatch) return { mismatch };
  }
  return { consumed };
}

/** Compares a TS option's values (see ./timestamps.ts); undefined when they match. */
export type TsCheck = (want: { val: number; ecr: number }, got: { val: number; ecr: number }) => string | undefined;

/**
 * Options in order, kind by kind (packetdrill: "TCP options are expected to be a deterministic
 * order"); every value byte for byte except the timestamps, which `ts` judges (exactly without it).
 */
function compareOptions(want: TcpOpt[], got: TcpOpt[] | undefined, ts: TsCheck | undefined): string | undefined {
  const expected = formatOpts(want);
  if (got === undefined) return `options <malformed options>, expected <${expected}>`;
  const kinds = (l: TcpOpt[]) => l.map((o) => o.kind).join(',');
  if (kinds(want) === kinds(got)) {
    for (let i = 0; i < want.length; i++) {
      const w = want[i]!;
      const g = got[i]!;
      if (w.kind === 'TS' && g.kind === 'TS') {
        const why = ts ? ts(w, g) : w.val !== g.val || w.ecr !== g.ecr ? `TS val ${g.val} ecr ${g.ecr}, expected TS val ${w.val} ecr ${w.ecr}` : undefined;
        if (why) return `options: ${why}`;
      } else if (formatOpts([w]) !== formatOpts([g])) {
        return `options <${formatOpts(got)}>, expected <${expected}>`;
      }
    }
    return undefined;
  }
  return `options <${formatOpts(got)}>, expected <${expected}>`;
}

function u32Bytes(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}
