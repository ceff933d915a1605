/**
 * Zone files in the master file format of RFC 1035 section 5:
 *
 *     $ORIGIN example.test.
 *     $TTL 1h
 *     @        IN SOA  ns admin ( 2024010101 ; serial
 *                                 3600 900 604800 60 )
 *              IN NS   ns
 *     ns       IN A    10.78.0.1
 *     www 300  IN CNAME @
 *     @           MX   10 mail
 *     @           TXT  "v=spf1 -all" "second string"
 *
 * Supported: $ORIGIN, $TTL, the types SOA, NS, A, AAAA, CNAME, MX, TXT and PTR, class IN,
 * TTL and class in either order, "@", relative and absolute names, a blank owner meaning
 * the previous one, parentheses spanning lines, ";" comments, quoted strings with "\"
 * escapes, and TTLs with BIND's unit letters (1h30m). Everything else is an error.
 *
 * Sans-I/O: the caller reads the file. Errors are one sentence prefixed with `file:line:`,
 * the form compilers use, collected in order (the first is what the CLI prints).
 */
import { parseIpv4 } from '../ip/addr.js';
import { parseIpv6 } from './ipv6.js';
import { canonicalName, isSubdomain, nameToLabels } from './name.js';
import type { DnsRecord } from './wire.js';
import { CLASS_IN } from './wire.js';
import { Zone } from './zone.js';

export class ZoneFileError extends Error {
  override name = 'ZoneFileError';
}

interface Token {
  text: string;
  quoted: boolean;
  line: number;
}

/** One logical entry: its tokens, whether it began with blank space (owner omitted), its first line. */
interface Entry {
  tokens: Token[];
  blankOwner: boolean;
  line: number;
}

const MAX_TTL = 0x7fffffff; // RFC 2181 section 8: TTLs are 31-bit

/**
 * Parse `text` (the contents of `file`) into a Zone. `origin` is the starting $ORIGIN
 * (e.g. from the command line); the file's $ORIGIN lines override it.
 * Throws ZoneFileError with `file:line: sentence`.
 */
export function parseZoneFile(text: string, file: string, opts: { origin?: string; defaultTtl?: number } = {}): Zone {
  const fail = (line: number, msg: string): never => {
    throw new ZoneFileError(`${file}:${line}: ${msg}`);
  };
  let origin: string | undefined = opts.origin !== undefined ? canonicalName(opts.origin) : undefined;
  let defaultTtl: number | undefined = opts.defaultTtl;
  let lastOwner: string | undefined;
  let lastTtl: number | undefined;
  let soa: Extract<DnsRecord, { type: 'SOA' }> | undefined;
  let soaLine = 0;
  const records: Array<{ rec: DnsRecord; line: number }> = [];

  const name = (tok: Token | undefined, line: number, what: string): string => {
    if (!tok) return fail(line, `missing ${what}`);
    const t = tok.text;
    let full: string;
    if (t === '@') {
      if (origin === undefined) return fail(tok.line, `"@" used before any $ORIGIN`);
      full = origin;
    } else if (t.endsWith('.') && !t.endsWith('\\.')) {
      full = t;
    } else {
      if (origin === undefined) return fail(tok.line, `the relative name "${t}" needs an $ORIGIN (or end it with a dot)`);
      full = origin === '' ? t : `${t}.${origin}`;
    }
    if (!nameToLabels(full)) return fail(tok.line, `"${t}" is not a valid domain name (labels of 1..63 characters, 255 in all)`);
    return canonicalName(full);
  };

  for (const entry of entries(text, fail)) {
    const toks = entry.tokens;
    const first = toks[0]!;
    if (!first.quoted && first.text.startsWith('$')) {
      const directive = first.text.toUpperCase();
      if (directive === '$ORIGIN') {
        if (toks.length !== 2) fail(entry.line, '$ORIGIN takes exactly one domain name');
        const o = toks[1]!.text;
        if (!o.endsWith('.')) fail(entry.line, `$ORIGIN must be an absolute name ending with a dot (got "${o}")`);
        if (!nameToLabels(o)) fail(entry.line, `"${o}" is not a valid domain name`);
        origin = canonicalName(o);
      } else if (directive === '$TTL') {
        if (toks.length !== 2) fail(entry.line, '$TTL takes exactly one TTL');
        defaultTtl = parseTtl(toks[1]!.text) ?? fail(entry.line, `"${toks[1]!.text}" is not a TTL (seconds, or like 1h30m)`);
      } else if (directive === '$INCLUDE') {
        fail(entry.line, '$INCLUDE is not supported: put the records in this file');
      } else {
        fail(entry.line, `unknown directive ${first.text} (supported: $ORIGIN, $TTL)`);
      }
      continue;
    }

    let i = 0;
    let owner: string;
    if (entry.blankOwner) {
      owner = lastOwner ?? fail(entry.line, 'a record without an owner name must follow one with an owner');
    } else {
      owner = name(toks[i++], entry.line, 'owner name');
    }
    lastOwner = owner;
    let ttl: number | undefined;
    let klass: string | undefined;
    // RFC 1035 section 5.1: [<TTL>] [<class>] <type> <RDATA>, TTL and class in either order.
    for (let k = 0; k < 2 && i < toks.length; k++) {
      const t = toks[i]!.text;
      if (ttl === undefined && /^\d/.test(t)) {
        ttl = parseTtl(t) ?? fail(entry.line, `"${t}" is not a TTL (seconds, or like 1h30m)`);
        i++;
      } else if (klass === undefined && /^(IN|CH|HS|CS)$/i.test(t)) {
        klass = t.toUpperCase();
        i++;
      }
    }
    if (klass !== undefined && klass !== 'IN') fail(entry.line, `class ${klass} is not supported: only IN`);
    const typeTok = toks[i++] ?? fail(entry.line, 'missing record type');
    const type = typeTok.text.toUpperCase();
    // RFC 2308 section 4: $TTL gives the default; without it, BIND uses the last TTL seen.
    const recTtl = ttl ?? defaultTtl ?? lastTtl ?? fail(entry.line, 'no TTL: give one on the record or set $TTL first');
    lastTtl = recTtl;
    const rdata = toks.slice(i);
    const base = { name: owner, class: CLASS_IN, ttl: recTtl };
    const want = (n: number, shape: string) => {
      if (rdata.length < n) fail(entry.line, `${type} needs ${shape}`);
      if (rdata.length > n) fail(rdata[n]!.line, `unexpected "${rdata[n]!.text}" after the ${type} data (${type} takes ${shape})`);
    };
    const u32 = (tok: Token, what: string): number => {
      if (!/^\d{1,10}$/.test(tok.text) || Number(tok.text) > 0xffffffff) return fail(tok.line, `${what} must be a number from 0 to 4294967295 (got "${tok.text}")`);
      return Number(tok.text);
    };
    let rec: DnsRecord;
    switch (type) {
      case 'A': {
        want(1, 'one IPv4 address');
        const a = rdata[0]!.text;
        if (parseIpv4(a) === undefined || !/^\d+\.\d+\.\d+\.\d+$/.test(a)) fail(entry.line, `"${a}" is not an IPv4 address`);
        rec = { ...base, type: 'A', address: a.split('.').map(Number).join('.') };
        break;
      }
      case 'AAAA': {
        want(1, 'one IPv6 address');
        if (!parseIpv6(rdata[0]!.text)) fail(entry.line, `"${rdata[0]!.text}" is not an IPv6 address`);
        rec = { ...base, type: 'AAAA', address: rdata[0]!.text.toLowerCase() };
        break;
      }
      case 'CNAME':
      case 'NS':
      case 'PTR':
        want(1, 'one domain name');
        rec = { ...base, type, target: name(rdata[0], entry.line, 'target name') };
        break;
      case 'MX': {
        want(2, 'a preference and a mail exchange name');
        const pref = rdata[0]!.text;
        if (!/^\d{1,5}$/.test(pref) || Number(pref) > 65535) fail(entry.line, `MX preference must be a number from 0 to 65535 (got "${pref}")`);
        rec = { ...base, type: 'MX', preference: Number(pref), exchange: name(rdata[1], entry.line, 'mail exchange name') };
        break;
      }
      case 'TXT': {
        if (rdata.length === 0) fail(entry.line, 'TXT needs at least one string');
        const strings = rdata.map((t) => {
          const b = Buffer.from(t.text, 'latin1');
          if (b.length > 255) fail(t.line, `a TXT string is at most 255 bytes (this one has ${b.length}): split it into several strings`);
          return new Uint8Array(b);
        });
        rec = { ...base, type: 'TXT', strings };
        break;
      }
      case 'SOA': {
        want(7, 'mname, rname, serial, refresh, retry, expire and minimum');
        if (soa) fail(entry.line, `a second SOA record (the first is on line ${soaLine}): a zone has exactly one`);
        const s: Extract<DnsRecord, { type: 'SOA' }> = {
          ...base,
          type: 'SOA',
          mname: name(rdata[0], entry.line, 'SOA mname'),
          rname: name(rdata[1], entry.line, 'SOA rname'),
          serial: u32(rdata[2]!, 'the SOA serial'),
          refresh: parseTtl(rdata[3]!.text) ?? fail(entry.line, `SOA refresh "${rdata[3]!.text}" is not a time`),
          retry: parseTtl(rdata[4]!.text) ?? fail(entry.line, `SOA retry "${rdata[4]!.text}" is not a time`),
          expire: parseTtl(rdata[5]!.text) ?? fail(entry.line, `SOA expire "${rdata[5]!.text}" is not a time`),
          minimum: parseTtl(rdata[6]!.text) ?? fail(entry.line, `SOA minimum "${rdata[6]!.text}" is not a time`),
        };
        soa = s;
        soaLine = entry.line;
        continue;
      }
      default:
        fail(typeTok.line, `record type ${typeTok.text} is not supported (supported: SOA, NS, A, AAAA, CNAME, MX, TXT, PTR)`);
    }
    records.push({ rec: rec!, line: entry.line });
  }

  if (!soa) throw new ZoneFileError(`${file}:1: the zone has no SOA record: every zone starts with one`);
  const zoneOrigin = canonicalName(soa.name);
  const cnames = new Map<string, number>();
  const others = new Map<string, number>();
  for (const { rec, line } of records) {
    if (!isSubdomain(rec.name, zoneOrigin)) fail(line, `${rec.name} is outside the zone ${zoneOrigin} (its SOA is on line ${soaLine})`);
    const seen = rec.type === 'CNAME' ? cnames : others;
    if (rec.type === 'CNAME' && cnames.has(rec.name)) fail(line, `a second CNAME for ${rec.name} (the first is on line ${cnames.get(rec.name)}): a name has at most one`);
    if (!seen.has(rec.name)) seen.set(rec.name, line);
  }
  // RFC 1034 section 3.6.2: a name with a CNAME has no other data.
  for (const [n, line] of cnames) {
    if (others.has(n) || n === zoneOrigin) {
      fail(line, `${n} has a CNAME and other records (line ${others.get(n) ?? soaLine}): a CNAME must be the only record of its name`);
    }
  }
  return new Zone(soa, records.map((r) => r.rec));
}

/** Seconds, or BIND's units: 1w2d3h4m5s (case-insensitive). Undefined when malformed or over 2^31-1. */
export function parseTtl(text: string): number | undefined {
  if (/^\d{1,10}$/.test(text)) {
    const n = Number(text);
    return n <= MAX_TTL ? n : undefined;
  }
  const re = /(\d{1,10})([wdhms])/giy;
  let total = 0;
  let consumed = 0;
  const unit: Record<string, number> = { w: 604800, d: 86400, h: 3600, m: 60, s: 1 };
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * unit[m[2]!.toLowerCase()]!;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length || total > MAX_TTL) return undefined;
  return total;
}

/**
 * Split the text into entries: tokens per logical line, where "( ... )" joins physical
 * lines, ";" starts a comment (outside quotes) and quoted strings keep their spaces.
 */
function entries(text: string, fail: (line: number, msg: string) => never): Entry[] {
  const out: Entry[] = [];
  let line = 1;
  let cur: Entry | undefined;
  let depth = 0;
  let parenLine = 0;
  let atLineStart = true;
  const end = () => {
    if (cur && cur.tokens.length > 0) out.push(cur);
    cur = undefined;
  };
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === '\n') {
      if (depth === 0) end();
      line++;
      i++;
      atLineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      if (atLineStart && depth === 0 && !cur) cur = { tokens: [], blankOwner: true, line };
      i++;
      atLineStart = false;
      continue;
    }
    atLineStart = false;
    if (c === ';') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    cur ??= { tokens: [], blankOwner: false, line };
    if (c === '(') {
      if (depth > 0) fail(line, 'nested "(": parentheses only group one record across lines');
      depth = 1;
      parenLine = line;
      i++;
      continue;
    }
    if (c === ')') {
      if (depth === 0) fail(line, 'a ")" without an opening "("');
      depth = 0;
      i++;
      continue;
    }
    if (c === '"') {
      let s = '';
      const start = line;
      i++;
      for (;;) {
        if (i >= text.length) fail(start, 'a quoted string is not closed');
        const d = text[i]!;
        if (d === '"') break;
        if (d === '\n') fail(start, 'a quoted string is not closed before the end of the line');
        if (d === '\\') {
          const dec = /^\d{3}/.exec(text.slice(i + 1, i + 4));
          if (dec) {
            if (Number(dec[0]) > 255) fail(line, `"\\${dec[0]}" is not a byte (\\DDD is decimal, 000..255)`);
            s += String.fromCharCode(Number(dec[0]));
            i += 4;
            continue;
          }
          i++;
          if (i >= text.length || text[i] === '\n') fail(start, 'a quoted string is not closed');
        }
        const ch = text[i]!;
        if (ch.charCodeAt(0) > 0xff) fail(line, 'zone files are ASCII: write other bytes as \\DDD');
        s += ch;
        i++;
      }
      i++;
      cur.tokens.push({ text: s, quoted: true, line: start });
      continue;
    }
    let j = i;
    while (j < text.length && !/[\s;()"]/.test(text[j]!)) {
      if (text[j] === '\\') j++;
      j++;
    }
    cur.tokens.push({ text: text.slice(i, Math.min(j, text.length)), quoted: false, line });
    i = j;
  }
  if (depth > 0) fail(parenLine, 'a "(" is never closed');
  end();
  return out;
}
