/**
 * An authoritative-only DNS server (RFC 1034 section 4.3.2, RFC 1035), sans-I/O: a query's
 * bytes in, the response's bytes out (or nothing, when a query must be dropped). The
 * runtime (./service.ts) moves the bytes over UDP and TCP port 53.
 *
 * - Names in a zone get authoritative answers (AA); CNAMEs are followed inside our zones.
 * - A name that does not exist: NXDOMAIN with the zone's SOA (RFC 2308 section 3); a name
 *   without the asked type: NOERROR with the SOA ("NODATA", RFC 2308 section 2.2).
 * - A name outside every zone: REFUSED, since this is not a recursive resolver (RA = 0).
 * - An opcode other than QUERY: NOTIMP; a malformed query: FORMERR (RFC 1035 section 4.1.1).
 * - Over UDP, an answer longer than 512 bytes (or the client's EDNS size, RFC 6891 section
 *   6.2.5) is cut to the header and question with TC set; the client asks again over TCP
 *   (RFC 7766), where the whole answer is sent.
 */
import { canonicalName } from './name.js';
import type { DnsMessage, DnsRecord, Edns } from './wire.js';
import {
  CLASS_ANY,
  CLASS_IN,
  DNS_HEADER_LEN,
  DNS_UDP_MAX,
  EXT_RCODE_BADVERS,
  OPCODE_QUERY,
  RCODE,
  TYPE,
  dnsMessage,
  parseDns,
  recordType,
  writeDns,
} from './wire.js';
import type { Zone } from './zone.js';

/** Our EDNS UDP payload size: 1232 bytes avoids fragmentation on common paths (DNS Flag Day 2020). */
export const SERVER_EDNS_SIZE = 1232;
/** CNAME hops followed inside our zones before answering with what we have. */
const MAX_CNAME_CHAIN = 8;

export type Transport = 'udp' | 'tcp';

export class DnsServer {
  private readonly zones: Zone[];
  readonly stats: Record<string, number> = {};

  constructor(zones: Zone[]) {
    // Longest origin first, so a child zone wins over its parent.
    this.zones = [...zones].sort((a, b) => b.origin.length - a.origin.length);
  }

  /** The response to `query`, or undefined to drop it (too short to answer, or a response itself). */
  answer(query: Uint8Array, transport: Transport): Uint8Array | undefined {
    this.count('queries.' + transport);
    // Less than a header: nothing to echo an ID into. A response (QR=1): answering could loop.
    if (query.length < DNS_HEADER_LEN) return this.drop('short');
    if (query[2]! & 0x80) return this.drop('is-response');
    const opcode = (query[2]! >>> 3) & 0xf;
    const id = (query[0]! << 8) | query[1]!;
    const rd = (query[2]! & 1) !== 0;
    const parsed = parseDns(query);
    if (opcode !== OPCODE_QUERY) return this.reply(dnsMessage({ id, qr: true, opcode, rd, rcode: RCODE.NOTIMP }), 'notimp');
    if ('error' in parsed) return this.reply(dnsMessage({ id, qr: true, opcode, rd, rcode: RCODE.FORMERR }), 'formerr.' + parsed.error);
    const q = parsed;
    // RFC 9619: a query has exactly one question.
    if (q.questions.length !== 1) return this.reply(dnsMessage({ id, qr: true, rd, rcode: RCODE.FORMERR }), 'formerr.qdcount');
    const question = q.questions[0]!;
    const res = dnsMessage({ id, qr: true, rd, cd: q.cd, questions: [question] });
    if (q.edns) {
      res.edns = { udpSize: SERVER_EDNS_SIZE, extendedRcode: 0, version: 0, dnssecOk: q.edns.dnssecOk, options: [] };
      // RFC 6891 section 6.1.3: we speak version 0 only.
      if (q.edns.version !== 0) {
        res.edns.extendedRcode = EXT_RCODE_BADVERS;
        return this.reply(res, 'badvers');
      }
    }
    const limit = transport === 'tcp' ? 65535 : udpLimit(q.edns);
    if (question.class !== CLASS_IN && question.class !== CLASS_ANY) {
      res.rcode = RCODE.REFUSED;
      return this.reply(res, 'refused.class');
    }
    const qname = canonicalName(question.name);
    const zone = this.zones.find((z) => z.contains(qname));
    if (!zone) {
      res.rcode = RCODE.REFUSED;
      return this.reply(res, 'refused.not-our-zone');
    }
    // Zone transfers are not offered (BIND's default: allow-transfer none).
    if (question.type === TYPE.AXFR || question.type === TYPE.IXFR) {
      res.rcode = RCODE.REFUSED;
      return this.reply(res, 'refused.transfer');
    }
    res.aa = true;
    this.resolve(zone, qname, question.type, res);
    return this.fit(res, limit);
  }

  /** RFC 1034 section 4.3.2 step 3, within one zone and the other zones we serve. */
  private resolve(zone: Zone, qname: string, qtype: number, res: DnsMessage): void {
    let name = qname;
    let z = zone;
    for (let hop = 0; ; hop++) {
      const rrs = z.lookup(name);
      if (rrs === undefined) {
        // Only the first name decides NXDOMAIN; after a CNAME the rcode says the target is missing too.
        res.rcode = RCODE.NXDOMAIN;
        res.authorities.push(negativeSoa(z));
        return this.count('nxdomain');
      }
      const cname = rrs.find((r) => r.type === 'CNAME');
      if (cname && qtype !== TYPE.CNAME && qtype !== TYPE.ANY) {
        res.answers.push(cname);
        const target = canonicalName((cname as { target: string }).target);
        const next = this.zones.find((x) => x.contains(target));
        // A target outside our zones is the client's to resolve (RFC 1034 section 4.3.2 step 3a).
        if (!next || hop + 1 >= MAX_CNAME_CHAIN || res.answers.some((r) => r !== cname && canonicalName(r.name) === target)) return;
        name = target;
        z = next;
        continue;
      }
      const matching = rrs.filter((r) => qtype === TYPE.ANY || recordType(r) === qtype);
      if (matching.length === 0) {
        res.authorities.push(negativeSoa(z));
        return this.count('nodata');
      }
      res.answers.push(...matching);
      this.addGlue(res, matching);
      return this.count('answered');
    }
  }

  /** Additional section processing (RFC 1035 section 3.3.9, 3.3.11): addresses of MX and NS targets we hold. */
  private addGlue(res: DnsMessage, rrs: DnsRecord[]): void {
    for (const r of rrs) {
      const target = r.type === 'MX' ? r.exchange : r.type === 'NS' ? r.target : undefined;
      if (target === undefined) continue;
      const t = canonicalName(target);
      const z = this.zones.find((x) => x.contains(t));
      for (const g of z?.lookup(t) ?? []) {
        if ((g.type === 'A' || g.type === 'AAAA') && !res.additionals.includes(g)) res.additionals.push(g);
      }
    }
  }

  /** Serialise; over the size limit, send the header and question with TC (RFC 2181 section 9). */
  private fit(res: DnsMessage, limit: number): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = writeDns(res);
    } catch {
      // Zone data that cannot fit one message (over 64 KiB): the server fails, the process does not.
      return this.reply(dnsMessage({ ...res, answers: [], authorities: [], additionals: [], aa: false, rcode: RCODE.SERVFAIL }), 'servfail.too-big');
    }
    if (bytes.length <= limit) return bytes;
    this.count('truncated');
    return writeDns({ ...res, tc: true, answers: [], authorities: [], additionals: [] });
  }

  private reply(m: DnsMessage, why: string): Uint8Array {
    this.count(why);
    return writeDns(m);
  }

  private drop(why: string): undefined {
    this.count('drop.' + why);
    return undefined;
  }

  private count(key: string): void {
    this.stats[key] = (this.stats[key] ?? 0) + 1;
  }
}

/** RFC 6891 section 6.2.5: the client's size, never below 512; capped at ours. */
function udpLimit(edns: Edns | undefined): number {
  if (!edns) return DNS_UDP_MAX;
  return Math.min(Math.max(edns.udpSize, DNS_UDP_MAX), SERVER_EDNS_SIZE);
}

/** RFC 2308 section 3: the SOA in a negative answer has TTL min(SOA TTL, SOA MINIMUM). */
function negativeSoa(z: Zone): DnsRecord {
  return { ...z.soa, ttl: Math.min(z.soa.ttl, z.soa.minimum) };
}

/** RFC 7766 section 8: over TCP each message is preceded by its length as two bytes. */
export function frameTcp(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + msg.length);
  out[0] = msg.length >>> 8;
  out[1] = msg.length & 0xff;
  out.set(msg, 2);
  return out;
}

/**
 * Splits a TCP byte stream into length-prefixed DNS messages (RFC 7766 section 8). Holds at
 * most one message (65537 bytes) at a time.
 */
export class TcpFramer {
  private buf = new Uint8Array(0);

  /** Bytes in; whole messages out (a stream may carry several, pipelined: RFC 7766 section 6.2.1.1). */
  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    const out: Uint8Array[] = [];
    let p = 0;
    while (joined.length - p >= 2) {
      const len = (joined[p]! << 8) | joined[p + 1]!;
      if (joined.length - p - 2 < len) break;
      out.push(joined.slice(p + 2, p + 2 + len));
      p += 2 + len;
    }
    this.buf = joined.slice(p);
    return out;
  }

  /** Bytes of an incomplete message held. */
  get pending(): number {
    return this.buf.length;
  }
}
