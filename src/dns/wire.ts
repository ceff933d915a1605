/**
 * DNS message codec (RFC 1035 section 4), with AAAA (RFC 3596) and the EDNS(0) OPT
 * pseudo-record (RFC 6891). Sans-I/O: bytes in, values out, and back.
 *
 *     +---------------------+
 *     |        Header       |  12 bytes: ID, flags, four counts
 *     +---------------------+
 *     |       Question      |  QNAME QTYPE QCLASS
 *     |        Answer       |  resource records: NAME TYPE CLASS TTL RDLENGTH RDATA
 *     |      Authority      |
 *     |      Additional     |  (the OPT record, when present, lives here)
 *     +---------------------+
 *
 * Reading never throws: a message that breaks any rule is `{ error }`. Names may use
 * compression pointers (section 4.1.4); a pointer must point strictly backwards, so every
 * jump lands earlier in the message and following them cannot loop; the decoded name must
 * still fit 255 bytes with labels of at most 63. Writing compresses owner names and the
 * names inside the RDATA of the RFC 1035 types (RFC 3597 section 4 forbids it for others).
 */
import { formatIpv6, parseIpv6 } from './ipv6.js';
import { MAX_NAME_WIRE, canonicalName, labelToText, nameToLabels } from './name.js';

export const DNS_HEADER_LEN = 12;
/** RFC 1035 section 4.2.1: the largest UDP message without EDNS. */
export const DNS_UDP_MAX = 512;

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255 } as const;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const OPCODE_QUERY = 0;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** RFC 6891 section 6.1.3: extended RCODE 16 (upper bits 1, header 0) for an unknown EDNS version. */
export const EXT_RCODE_BADVERS = 1;

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([k, v]) => [v, k]));

/** "A", "AAAA", ... or "TYPE99" (RFC 3597 section 5). */
export function typeName(t: number): string {
  return TYPE_NAMES.get(t) ?? `TYPE${t}`;
}
export function rcodeName(r: number): string {
  return RCODE_NAMES.get(r) ?? `RCODE${r}`;
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

interface RecordBase {
  name: string;
  class: number;
  ttl: number;
}

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** A resource record. Types without their own shape keep their RDATA as bytes. */
export type DnsRecord = RecordBase &
  (
    | { type: 'A'; address: string }
    | { type: 'AAAA'; address: string }
    | { type: 'CNAME' | 'NS' | 'PTR'; target: string }
    | { type: 'MX'; preference: number; exchange: string }
    | { type: 'TXT'; strings: Uint8Array[] }
    | ({ type: 'SOA' } & SoaData)
    | { type: 'OTHER'; code: number; rdata: Uint8Array }
  );

export interface EdnsOption {
  code: number;
  data: Uint8Array;
}

/** The OPT pseudo-record's fields (RFC 6891 section 6.1). */
export interface Edns {
  /** Requestor's UDP payload size (the OPT record's CLASS). */
  udpSize: number;
  /** Upper 8 bits of the 12-bit RCODE. */
  extendedRcode: number;
  version: number;
  /** DNSSEC OK bit. */
  dnssecOk: boolean;
  options: EdnsOption[];
}

export interface DnsMessage {
  id: number;
  /** QR: a response. */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** AD and CD (RFC 4035) and the reserved Z bit, kept as they came. */
  ad: boolean;
  cd: boolean;
  z: boolean;
  /** The header's 4-bit RCODE (EDNS adds upper bits in `edns.extendedRcode`). */
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  /** Additional records, the OPT record left out (it is `edns`). */
  additionals: DnsRecord[];
  edns?: Edns | undefined;
}

export type DnsParseError =
  | 'truncated'
  | 'bad-pointer'
  | 'bad-label-type'
  | 'name-too-long'
  | 'bad-rdata'
  | 'duplicate-opt'
  | 'trailing-bytes';

/** A message with default flags: handy for building queries and answers. */
export function dnsMessage(fields: Partial<DnsMessage> & { id: number }): DnsMessage {
  return {
    qr: false,
    opcode: OPCODE_QUERY,
    aa: false,
    tc: false,
    rd: false,
    ra: false,
    ad: false,
    cd: false,
    z: false,
    rcode: 0,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    ...fields,
  };
}

// ───────────────────────── reading ─────────────────────────

class ParseFail {
  constructor(readonly reason: DnsParseError) {}
}

/** Bounds-checked reads over a message; every failure is a ParseFail (caught in parseDns). */
class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new ParseFail('truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /**
   * A name at the current position (RFC 1035 section 4.1.4). A pointer must point before
   * the start of the stretch of labels it ends (the name's start, or the previous jump's
   * target): every jump lands strictly earlier than the last, so the walk ends within the
   * message length. The labels gathered must fit 255 bytes in all.
   */
  name(): string {
    const labels: string[] = [];
    let wire = 1;
    let p = this.pos;
    let segStart = p;
    let jumped = false;
    // Each step either consumes a label or jumps strictly backwards: at most buf.length steps.
    for (let steps = 0; steps <= this.buf.length; steps++) {
      if (p >= this.buf.length) throw new ParseFail('truncated');
      const len = this.buf[p]!;
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (p + 1 >= this.buf.length) throw new ParseFail('truncated');
        const target = ((len & 0x3f) << 8) | this.buf[p + 1]!;
        // No pointer forward, to itself, or into the labels it ends: any of those could loop.
        if (target >= segStart) throw new ParseFail('bad-pointer');
        if (!jumped) this.pos = p + 2;
        jumped = true;
        p = segStart = target;
        continue;
      }
      // 0x40 and 0x80 are the extended and reserved label types (RFC 6891 section 5 retired 0x40).
      if (kind !== 0) throw new ParseFail('bad-label-type');
      if (len === 0) {
        if (!jumped) this.pos = p + 1;
        return labels.join('.');
      }
      wire += len + 1;
      if (wire > MAX_NAME_WIRE) throw new ParseFail('name-too-long');
      if (p + 1 + len > this.buf.length) throw new ParseFail('truncated');
      labels.push(labelToText(this.buf.subarray(p + 1, p + 1 + len)));
      p += 1 + len;
    }
    throw new ParseFail('bad-pointer');
  }
}

/** Decode a whole message. Never throws: any malformed message is `{ error }`. */
export function parseDns(buf: Uint8Array): DnsMessage | { error: DnsParseError } {
  try {
    return parseOrThrow(buf);
  } catch (e) {
    if (e instanceof ParseFail) return { error: e.reason };
    throw e; // a bug in this file, not bad input
  }
}

function parseOrThrow(buf: Uint8Array): DnsMessage {
  const r = new Reader(buf);
  const id = r.u16();
  const flags = r.u16();
  const counts = [r.u16(), r.u16(), r.u16(), r.u16()] as const;
  const questions: DnsQuestion[] = [];
  // Counts come from the wire: each entry consumes bytes, so a reader that runs out stops them.
  for (let i = 0; i < counts[0]; i++) questions.push({ name: r.name(), type: r.u16(), class: r.u16() });
  const answers: DnsRecord[] = [];
  const authorities: DnsRecord[] = [];
  const additionals: DnsRecord[] = [];
  let edns: Edns | undefined;
  for (let i = 0; i < counts[1]; i++) answers.push(readRecord(r).record);
  for (let i = 0; i < counts[2]; i++) authorities.push(readRecord(r).record);
  for (let i = 0; i < counts[3]; i++) {
    const { record, opt } = readRecord(r);
    if (opt) {
      // RFC 6891 section 6.1.1: more than one OPT makes the message malformed.
      if (edns) throw new ParseFail('duplicate-opt');
      edns = opt;
    } else additionals.push(record);
  }
  if (r.pos !== buf.length) throw new ParseFail('trailing-bytes');
  return {
    id,
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >>> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    z: (flags & 0x0040) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
    authorities,
    additionals,
    edns,
  };
}

function readRecord(r: Reader): { record: DnsRecord; opt?: Edns } {
  const name = r.name();
  const type = r.u16();
  const klass = r.u16();
  const ttl = r.u32();
  const rdlength = r.u16();
  r.need(rdlength);
  const start = r.pos;
  const end = start + rdlength;
  const base = { name, class: klass, ttl };
  let record: DnsRecord;
  let opt: Edns | undefined;
  switch (type) {
    case TYPE.A:
      if (rdlength !== 4) throw new ParseFail('bad-rdata');
      record = { ...base, type: 'A', address: Array.from(r.bytes(4)).join('.') };
      break;
    case TYPE.AAAA:
      if (rdlength !== 16) throw new ParseFail('bad-rdata');
      record = { ...base, type: 'AAAA', address: formatIpv6(r.bytes(16)) };
      break;
    case TYPE.CNAME:
    case TYPE.NS:
    case TYPE.PTR:
      record = { ...base, type: typeName(type) as 'CNAME' | 'NS' | 'PTR', target: r.name() };
      break;
    case TYPE.MX:
      record = { ...base, type: 'MX', preference: r.u16(), exchange: r.name() };
      break;
    case TYPE.SOA:
      record = { ...base, type: 'SOA', mname: r.name(), rname: r.name(), serial: r.u32(), refresh: r.u32(), retry: r.u32(), expire: r.u32(), minimum: r.u32() };
      break;
    case TYPE.TXT: {
      const strings: Uint8Array[] = [];
      while (r.pos < end) {
        const n = r.u8();
        if (r.pos + n > end) throw new ParseFail('bad-rdata');
        strings.push(r.bytes(n).slice());
      }
      // RFC 1035 section 3.3.14: one or more strings.
      if (strings.length === 0) throw new ParseFail('bad-rdata');
      record = { ...base, type: 'TXT', strings };
      break;
    }
    case TYPE.OPT: {
      // RFC 6891 section 6.1.2: the owner is the root; options are {code, length, data}.
      if (name !== '') throw new ParseFail('bad-rdata');
      const options: EdnsOption[] = [];
      while (r.pos < end) {
        if (end - r.pos < 4) throw new ParseFail('bad-rdata');
        const code = r.u16();
        const len = r.u16();
        if (r.pos + len > end) throw new ParseFail('bad-rdata');
        options.push({ code, data: r.bytes(len).slice() });
      }
      opt = { udpSize: klass, extendedRcode: ttl >>> 24, version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0, options };
      record = { ...base, type: 'OTHER', code: TYPE.OPT, rdata: new Uint8Array(0) };
      break;
    }
    default:
      record = { ...base, type: 'OTHER', code: type, rdata: r.bytes(rdlength).slice() };
  }
  // The RDATA must be exactly RDLENGTH long: a name running past it is malformed.
  if (r.pos !== end) throw new ParseFail('bad-rdata');
  return opt ? { record, opt } : { record };
}

/** The numeric TYPE of a record. */
export function recordType(rec: DnsRecord): number {
  return rec.type === 'OTHER' ? rec.code : TYPE[rec.type];
}

// ───────────────────────── writing ─────────────────────────

/** A growing buffer with a table of names already written, for compression. */
class Writer {
  buf = new Uint8Array(512);
  pos = 0;
  private readonly names = new Map<string, number>();

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos + n > 65535) throw new RangeError('DNS message longer than 65535 bytes');
    const next = new Uint8Array(Math.min(65535, Math.max(this.buf.length * 2, this.pos + n)));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
  }
  u32(v: number): void {
    this.u16(v >>> 16);
    this.u16(v & 0xffff);
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** A name; with `compress`, any suffix written before becomes a pointer (RFC 1035 section 4.1.4). */
  name(text: string, compress: boolean): void {
    const labels = nameToLabels(text);
    if (!labels) throw new RangeError(`invalid domain name ${JSON.stringify(text)}`);
    const keys = labels.map((_, i) => canonicalName(labels.slice(i).map(labelToText).join('.')));
    for (let i = 0; i < labels.length; i++) {
      const at = compress ? this.names.get(keys[i]!) : undefined;
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      // Only offsets that fit the pointer's 14 bits can be targets.
      if (this.pos < 0x4000) this.names.set(keys[i]!, this.pos);
      this.u8(labels[i]!.length);
      this.bytes(labels[i]!);
    }
    this.u8(0);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/**
 * Encode a message. Throws RangeError only for values no message can hold (a name over
 * 255 bytes, a message over 65535): those come from our own code or zone, never the wire.
 */
export function writeDns(m: DnsMessage): Uint8Array {
  const w = new Writer();
  w.u16(m.id);
  const rcode = m.rcode & 0xf;
  w.u16(
    (m.qr ? 0x8000 : 0) |
      ((m.opcode & 0xf) << 11) |
      (m.aa ? 0x0400 : 0) |
      (m.tc ? 0x0200 : 0) |
      (m.rd ? 0x0100 : 0) |
      (m.ra ? 0x0080 : 0) |
      (m.z ? 0x0040 : 0) |
      (m.ad ? 0x0020 : 0) |
      (m.cd ? 0x0010 : 0) |
      rcode,
  );
  w.u16(m.questions.length);
  w.u16(m.answers.length);
  w.u16(m.authorities.length);
  w.u16(m.additionals.length + (m.edns ? 1 : 0));
  for (const q of m.questions) {
    w.name(q.name, true);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const rec of m.answers) writeRecord(w, rec);
  for (const rec of m.authorities) writeRecord(w, rec);
  for (const rec of m.additionals) writeRecord(w, rec);
  if (m.edns) {
    const e = m.edns;
    w.u8(0); // root owner
    w.u16(TYPE.OPT);
    w.u16(e.udpSize);
    w.u32(((e.extendedRcode & 0xff) << 24) | ((e.version & 0xff) << 16) | (e.dnssecOk ? 0x8000 : 0));
    const len = e.options.reduce((n, o) => n + 4 + o.data.length, 0);
    w.u16(len);
    for (const o of e.options) {
      w.u16(o.code);
      w.u16(o.data.length);
      w.bytes(o.data);
    }
  }
  return w.result();
}

function writeRecord(w: Writer, rec: DnsRecord): void {
  w.name(rec.name, true);
  w.u16(recordType(rec));
  w.u16(rec.class);
  w.u32(rec.ttl >>> 0);
  const lenAt = w.pos;
  w.u16(0);
  const start = w.pos;
  switch (rec.type) {
    case 'A': {
      const o = rec.address.split('.').map(Number);
      if (o.length !== 4 || o.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) throw new RangeError(`bad IPv4 address ${rec.address}`);
      for (const v of o) w.u8(v);
      break;
    }
    case 'AAAA': {
      const b = parseIpv6(rec.address);
      if (!b) throw new RangeError(`bad IPv6 address ${rec.address}`);
      w.bytes(b);
      break;
    }
    case 'CNAME':
    case 'NS':
    case 'PTR':
      w.name(rec.target, true);
      break;
    case 'MX':
      w.u16(rec.preference);
      w.name(rec.exchange, true);
      break;
    case 'SOA':
      w.name(rec.mname, true);
      w.name(rec.rname, true);
      w.u32(rec.serial);
      w.u32(rec.refresh);
      w.u32(rec.retry);
      w.u32(rec.expire);
      w.u32(rec.minimum);
      break;
    case 'TXT':
      for (const s of rec.strings) {
        if (s.length > 255) throw new RangeError('TXT string longer than 255 bytes');
        w.u8(s.length);
        w.bytes(s);
      }
      break;
    case 'OTHER':
      w.bytes(rec.rdata);
      break;
  }
  const len = w.pos - start;
  if (len > 0xffff) throw new RangeError('RDATA longer than 65535 bytes');
  w.buf[lenAt] = len >>> 8;
  w.buf[lenAt + 1] = len & 0xff;
}

// ───────────────────────── helpers ─────────────────────────

/** The ID of a message of at least 2 bytes (to answer FORMERR with the right ID). */
export function peekId(buf: Uint8Array): number | undefined {
  return buf.length >= 2 ? (buf[0]! << 8) | buf[1]! : undefined;
}

/** Text of a record's data, as dig shows it (for logs and the timeline). */
export function rdataText(rec: DnsRecord): string {
  switch (rec.type) {
    case 'A':
    case 'AAAA':
      return rec.address;
    case 'CNAME':
    case 'NS':
    case 'PTR':
      return rec.target + '.';
    case 'MX':
      return `${rec.preference} ${rec.exchange}.`;
    case 'SOA':
      return `${rec.mname}. ${rec.rname}. ${rec.serial} ${rec.refresh} ${rec.retry} ${rec.expire} ${rec.minimum}`;
    case 'TXT':
      return rec.strings.map((s) => JSON.stringify(Buffer.from(s).toString('latin1'))).join(' ');
    case 'OTHER':
      return `\\# ${rec.rdata.length} ${Buffer.from(rec.rdata).toString('hex')}`;
  }
}
