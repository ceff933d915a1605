/**
 * The DNS codec: round trips, name compression, every compression-pointer attack, hostile
 * bytes that must never throw, and a cross-check against dns-packet (a well-kept library
 * used here only as an oracle) on generated messages.
 */
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { formatIpv6, parseIpv6 } from '../../src/dns/ipv6.js';
import { canonicalName, nameToLabels } from '../../src/dns/name.js';
import type { DnsMessage, DnsRecord } from '../../src/dns/wire.js';
import { CLASS_IN, TYPE, dnsMessage, parseDns, writeDns } from '../../src/dns/wire.js';
import { seededRandom } from '../../src/runtime/random.js';

const IN = CLASS_IN;

function sample(): DnsMessage {
  return dnsMessage({
    id: 0xbeef,
    qr: true,
    aa: true,
    rd: true,
    questions: [{ name: 'www.example.test', type: TYPE.A, class: IN }],
    answers: [
      { name: 'www.example.test', class: IN, ttl: 300, type: 'CNAME', target: 'web.example.test' },
      { name: 'web.example.test', class: IN, ttl: 60, type: 'A', address: '10.78.0.1' },
      { name: 'web.example.test', class: IN, ttl: 60, type: 'AAAA', address: '2001:db8::1' },
      { name: 'example.test', class: IN, ttl: 3600, type: 'MX', preference: 10, exchange: 'mail.example.test' },
      { name: 'example.test', class: IN, ttl: 3600, type: 'TXT', strings: [new TextEncoder().encode('v=spf1 -all'), new Uint8Array([0, 255, 34])] },
      { name: '1.0.78.10.in-addr.arpa', class: IN, ttl: 10, type: 'PTR', target: 'web.example.test' },
      { name: 'example.test', class: IN, ttl: 5, type: 'OTHER', code: 99, rdata: new Uint8Array([1, 2, 3]) },
    ],
    authorities: [
      { name: 'example.test', class: IN, ttl: 3600, type: 'NS', target: 'ns.example.test' },
      { name: 'example.test', class: IN, ttl: 3600, type: 'SOA', mname: 'ns.example.test', rname: 'hostmaster.example.test', serial: 2024010101, refresh: 3600, retry: 900, expire: 604800, minimum: 60 },
    ],
    additionals: [{ name: 'ns.example.test', class: IN, ttl: 3600, type: 'A', address: '10.78.0.53' }],
    edns: { udpSize: 1232, extendedRcode: 0, version: 0, dnssecOk: true, options: [{ code: 10, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) }] },
  });
}

/** Header (12 bytes) + question "a.test" A IN, then whatever `rest` is, with the counts given. */
function header(counts: [number, number, number, number], id = 1): number[] {
  return [id >> 8, id & 0xff, 0x81, 0x80, 0, counts[0], 0, counts[1], 0, counts[2], 0, counts[3]];
}

describe('DNS message codec', () => {
  it('round-trips every record type, EDNS and all header flags', () => {
    const m = sample();
    const bytes = writeDns(m);
    const back = parseDns(bytes);
    expect(back).toEqual(m);
    for (const flag of ['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd', 'z'] as const) {
      const f = dnsMessage({ id: 7, [flag]: true });
      expect(parseDns(writeDns(f))).toEqual(f);
    }
    const op = dnsMessage({ id: 9, opcode: 5, rcode: 3 });
    expect(parseDns(writeDns(op))).toEqual(op);
  });

  it('compresses repeated names with backward pointers', () => {
    const m = sample();
    const bytes = writeDns(m);
    const uncompressedName = (n: string) => n.length + 2;
    const names = [...m.questions.map((q) => q.name), ...[...m.answers, ...m.authorities, ...m.additionals].map((r) => r.name)];
    const naive = names.reduce((n, x) => n + uncompressedName(x), 0);
    // The answer's owner name is the question's: a two-byte pointer to offset 12.
    const firstAnswer = 12 + uncompressedName('www.example.test') + 4;
    expect([bytes[firstAnswer], bytes[firstAnswer + 1]]).toEqual([0xc0, 12]);
    expect(bytes.length).toBeLessThan(naive + 200);
    // dns-packet (which does not compress) reads our pointers to the same names.
    const theirs = dnsPacket.decode(Buffer.from(bytes));
    expect(theirs.answers!.map((a) => a.name)).toEqual(m.answers.map((a) => a.name));
  });

  it('matches names case-insensitively when compressing, and keeps the case written first', () => {
    const m = dnsMessage({
      id: 1,
      questions: [{ name: 'WWW.Example.TEST', type: TYPE.A, class: IN }],
      answers: [{ name: 'www.example.test', class: IN, ttl: 1, type: 'A', address: '10.0.0.1' }],
    });
    const back = parseDns(writeDns(m)) as DnsMessage;
    expect(back.answers[0]!.name).toBe('WWW.Example.TEST');
  });

  it('keeps presentation escapes in names (dots and bytes inside labels)', () => {
    const m = dnsMessage({ id: 1, questions: [{ name: 'a\\.b.c\\032d.\\255.test', type: TYPE.TXT, class: IN }] });
    const bytes = writeDns(m);
    expect(Array.from(bytes.subarray(12, 16))).toEqual([3, 0x61, 0x2e, 0x62]);
    expect((parseDns(bytes) as DnsMessage).questions[0]!.name).toBe('a\\.b.c\\032d.\\255.test');
  });

  describe('rejects every compression-pointer attack', () => {
    it('a pointer to itself', () => {
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 0xc0, 12, 0, 1, 0, 1]))).toEqual({ error: 'bad-pointer' });
    });
    it('two pointers pointing at each other (the later one forward)', () => {
      // question name at 12: pointer to 14; at 14: pointer back to 12.
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 0xc0, 14, 0xc0, 12, 0, 1, 0, 1]))).toEqual({ error: 'bad-pointer' });
    });
    it('a loop through labels back into the pointer that ends them', () => {
      // at 12: label "a", then a pointer to 12 (its own name's start): a -> a -> a ...
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 1, 0x61, 0xc0, 12, 0, 1, 0, 1]))).toEqual({ error: 'bad-pointer' });
      // an answer name pointing back to the question, which then points into the answer
      const q = [1, 0x61, 0xc0, 22]; // "a" + pointer forward to 22
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), ...q, 0, 1, 0, 1, 1, 0x62, 0xc0, 12]))).toHaveProperty('error');
    });
    it('a forward pointer', () => {
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 0xc0, 18, 0, 1, 0, 1, 1, 0x61, 0]))).toEqual({ error: 'bad-pointer' });
    });
    it('a pointer past the end of the message', () => {
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 0xff, 0xff, 0, 1, 0, 1]))).toEqual({ error: 'bad-pointer' });
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 0xc0]))).toEqual({ error: 'truncated' });
    });
    it('a name over 255 bytes, whether written out or built from pointers', () => {
      const label = [63, ...new Array(63).fill(0x61)];
      // 4 labels of 63 = 256 bytes with their length bytes, + the root: over 255.
      const long = [...label, ...label, ...label, ...label, 0];
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), ...long, 0, 1, 0, 1]))).toEqual({ error: 'name-too-long' });
      // Three labels at 12, then a name of one label + a pointer to them: 64 + 192 + 1 = 257.
      const three = [...label, ...label, ...label, 0];
      const q1 = [...three, 0, 1, 0, 1];
      const q2 = [...label, 0xc0, 12, 0, 1, 0, 1];
      expect(parseDns(Uint8Array.from([...header([2, 0, 0, 0]), ...q1, ...q2]))).toEqual({ error: 'name-too-long' });
      // 255 exactly is fine: three labels of 63 and one of 61, with their length bytes and the root.
      const ok = [...label, ...label, ...label, 61, ...new Array(61).fill(0x62), 0];
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), ...ok, 0, 1, 0, 1]))).not.toHaveProperty('error');
    });
    it('a long chain of backward pointers still ends (each hop goes further back)', () => {
      // 150 names, each "x" + a pointer to the previous one: the 128th is over 255 bytes.
      const bytes: number[] = [...header([150, 0, 0, 0]), 1, 0x78, 0, 0, 1, 0, 1];
      let prev = 12;
      for (let i = 1; i < 150; i++) {
        const here = bytes.length;
        bytes.push(1, 0x78, 0xc0 | (prev >> 8), prev & 0xff, 0, 1, 0, 1);
        prev = here;
      }
      expect(parseDns(Uint8Array.from(bytes))).toEqual({ error: 'name-too-long' });
    });
    it('label types 0x40 and 0x80 (a "label of 64" and the reserved kind)', () => {
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 64, ...new Array(64).fill(0x61), 0, 0, 1, 0, 1]))).toEqual({ error: 'bad-label-type' });
      expect(parseDns(Uint8Array.from([...header([1, 0, 0, 0]), 0x80, 0, 0, 1, 0, 1]))).toEqual({ error: 'bad-label-type' });
    });
  });

  it('rejects counts larger than the message, RDATA overruns, and trailing bytes', () => {
    expect(parseDns(Uint8Array.from(header([0, 65535, 0, 0])))).toEqual({ error: 'truncated' });
    // an A record claiming 5 bytes of RDATA
    const aRec = [0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5];
    expect(parseDns(Uint8Array.from([...header([0, 1, 0, 0]), ...aRec]))).toEqual({ error: 'bad-rdata' });
    // a CNAME whose name runs past its RDLENGTH
    const cname = [0, 0, 5, 0, 1, 0, 0, 0, 1, 0, 2, 3, 0x61, 0x62, 0x63, 0];
    expect(parseDns(Uint8Array.from([...header([0, 1, 0, 0]), ...cname]))).toEqual({ error: 'bad-rdata' });
    expect(parseDns(Uint8Array.from([...header([0, 0, 0, 0]), 0]))).toEqual({ error: 'trailing-bytes' });
    // two OPT records
    const opt = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
    expect(parseDns(Uint8Array.from([...header([0, 0, 0, 2]), ...opt, ...opt]))).toEqual({ error: 'duplicate-opt' });
    expect(parseDns(new Uint8Array(11))).toEqual({ error: 'truncated' });
  });

  it('never throws on random bytes or on mutations of valid messages (seeded)', () => {
    const seed = 20261201;
    const rnd = seededRandom(seed);
    const valid = writeDns(sample());
    let parsed = 0;
    for (let i = 0; i < 3000; i++) {
      let buf: Uint8Array;
      if (i % 2 === 0) {
        buf = Uint8Array.from({ length: Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256));
        if (buf.length > 4) buf[4] = buf[5] = 0; // keep counts small sometimes
      } else {
        buf = valid.slice(0, Math.floor(rnd() * (valid.length + 1)));
        for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) if (buf.length) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
      }
      let r: ReturnType<typeof parseDns>;
      try {
        r = parseDns(buf);
      } catch (e) {
        throw new Error(`seed ${seed}, iteration ${i}: parseDns threw ${(e as Error).message} on ${Buffer.from(buf).toString('hex')}`);
      }
      if (!('error' in r)) {
        parsed++;
        // Whatever parses must write back and parse to the same thing.
        expect(parseDns(writeDns(r)), `seed ${seed}, iteration ${i}`).toEqual(r);
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });
});

describe('names and IPv6 text', () => {
  it('enforces 63-byte labels and 255-byte names', () => {
    expect(nameToLabels('a'.repeat(63) + '.test')).toBeDefined();
    expect(nameToLabels('a'.repeat(64) + '.test')).toBeUndefined();
    const n = Array(4).fill('a'.repeat(62)).join('.'); // 4*63 + 1 = 253
    expect(nameToLabels(n)).toBeDefined();
    expect(nameToLabels(n + '.ab')).toBeUndefined(); // 256
    expect(nameToLabels('a..b')).toBeUndefined();
    expect(nameToLabels('.')).toEqual([]);
    expect(canonicalName('WWW.Example.Test.')).toBe('www.example.test');
  });

  it('prints IPv6 the RFC 5952 way and parses every form', () => {
    const cases: Array<[string, string]> = [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['::', '::'],
      ['::1', '::1'],
      ['::ffff:10.78.0.1', '::ffff:a4e:1'],
      ['FE80::A', 'fe80::a'],
    ];
    for (const [input, out] of cases) expect(formatIpv6(parseIpv6(input)!)).toBe(out);
    for (const bad of ['1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', 'g::', '1.2.3.4::', ':1', '1:2:3:4:5:6:7']) {
      expect(parseIpv6(bad), bad).toBeUndefined();
    }
  });
});

// ───────────────────────── cross-check against dns-packet ─────────────────────────

const LABELS = ['www', 'mail', 'a', 'b-1', 'xn--caf-dma', 'netstack', 'test', 'example', 'in-addr', 'arpa', '0', '78', '10'];

function genName(rnd: () => number): string {
  const n = 1 + Math.floor(rnd() * 4);
  return Array.from({ length: n }, () => LABELS[Math.floor(rnd() * LABELS.length)]!).join('.');
}

function genRecord(rnd: () => number): DnsRecord {
  const base = { name: genName(rnd), class: IN, ttl: Math.floor(rnd() * 2 ** 31) };
  const byte = () => Math.floor(rnd() * 256);
  switch (Math.floor(rnd() * 9)) {
    case 0:
      return { ...base, type: 'A', address: [byte(), byte(), byte(), byte()].join('.') };
    case 1:
      return { ...base, type: 'AAAA', address: formatIpv6(Uint8Array.from({ length: 16 }, () => (rnd() < 0.5 ? 0 : byte()))) };
    case 2:
      return { ...base, type: 'CNAME', target: genName(rnd) };
    case 3:
      return { ...base, type: 'NS', target: genName(rnd) };
    case 4:
      return { ...base, type: 'PTR', target: genName(rnd) };
    case 5:
      return { ...base, type: 'MX', preference: Math.floor(rnd() * 65536), exchange: genName(rnd) };
    case 6:
      return { ...base, type: 'TXT', strings: Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => Uint8Array.from({ length: Math.floor(rnd() * 40) }, byte)) };
    case 7:
      return { ...base, type: 'SOA', mname: genName(rnd), rname: genName(rnd), serial: Math.floor(rnd() * 2 ** 32), refresh: 3600, retry: 900, expire: 604800, minimum: Math.floor(rnd() * 86400) };
    default:
      return { ...base, type: 'OTHER', code: 99, rdata: Uint8Array.from({ length: Math.floor(rnd() * 20) }, byte) };
  }
}

function genMessage(rnd: () => number): DnsMessage {
  const list = (max: number) => Array.from({ length: Math.floor(rnd() * (max + 1)) }, () => genRecord(rnd));
  const m = dnsMessage({
    id: Math.floor(rnd() * 65536),
    qr: rnd() < 0.5,
    opcode: 0,
    aa: rnd() < 0.5,
    tc: rnd() < 0.2,
    rd: rnd() < 0.5,
    ra: rnd() < 0.5,
    rcode: Math.floor(rnd() * 6),
    questions: Array.from({ length: Math.floor(rnd() * 2) + 1 }, () => ({ name: genName(rnd), type: [1, 28, 5, 15, 16][Math.floor(rnd() * 5)]!, class: IN })),
    answers: list(5),
    authorities: list(2),
    additionals: list(2),
  });
  if (rnd() < 0.5) m.edns = { udpSize: 512 + Math.floor(rnd() * 4000), extendedRcode: 0, version: 0, dnssecOk: rnd() < 0.5, options: [] };
  return m;
}

/** dns-packet's view of a record, normalised to ours. */
function fromTheirs(a: dnsPacket.Answer): DnsRecord {
  const base = { name: a.name, class: IN, ttl: (a as { ttl: number }).ttl };
  const d = (a as { data: unknown }).data;
  switch (a.type) {
    case 'A':
      return { ...base, type: 'A', address: d as string };
    case 'AAAA':
      return { ...base, type: 'AAAA', address: formatIpv6(parseIpv6(d as string)!) };
    case 'CNAME':
    case 'NS':
    case 'PTR':
      return { ...base, type: a.type, target: d as string };
    case 'MX': {
      const mx = d as { preference: number; exchange: string };
      return { ...base, type: 'MX', preference: mx.preference, exchange: mx.exchange };
    }
    case 'TXT':
      return { ...base, type: 'TXT', strings: (d as Buffer[]).map((b) => new Uint8Array(b)) };
    case 'SOA':
      return { ...base, type: 'SOA', ...(d as object) } as DnsRecord;
    default:
      return { ...base, type: 'OTHER', code: 99, rdata: new Uint8Array(d as Buffer) };
  }
}

function toTheirs(r: DnsRecord): dnsPacket.Answer {
  const base = { name: r.name, class: 'IN' as const, ttl: r.ttl };
  switch (r.type) {
    case 'A':
    case 'AAAA':
      return { ...base, type: r.type, data: r.address };
    case 'CNAME':
    case 'NS':
    case 'PTR':
      return { ...base, type: r.type, data: r.target };
    case 'MX':
      return { ...base, type: 'MX', data: { preference: r.preference, exchange: r.exchange } };
    case 'TXT':
      return { ...base, type: 'TXT', data: r.strings.map((s) => Buffer.from(s)) };
    case 'SOA': {
      const { name: _n, class: _c, ttl: _t, type: _ty, ...soa } = r;
      return { ...base, type: 'SOA', data: soa };
    }
    case 'OTHER':
      return { ...base, type: 'UNKNOWN_99' as 'A', data: Buffer.from(r.rdata) as unknown as string };
  }
}

function normalise(m: DnsMessage): DnsMessage {
  const rec = (r: DnsRecord) => (r.type === 'AAAA' ? { ...r, address: formatIpv6(parseIpv6(r.address)!) } : r);
  return { ...m, answers: m.answers.map(rec), authorities: m.authorities.map(rec), additionals: m.additionals.map(rec) };
}

describe('cross-check with dns-packet', () => {
  const seed = 5452;

  it('dns-packet decodes 400 generated messages we encoded to the same content', () => {
    const rnd = seededRandom(seed);
    for (let i = 0; i < 400; i++) {
      const m = genMessage(rnd);
      const ours = writeDns(m);
      const theirs = dnsPacket.decode(Buffer.from(ours));
      const ctx = `seed ${seed}, message ${i}`;
      expect(theirs.id, ctx).toBe(m.id);
      expect(theirs.flag_qr, ctx).toBe(m.qr);
      expect([theirs.flag_aa, theirs.flag_tc, theirs.flag_rd, theirs.flag_ra], ctx).toEqual([m.aa, m.tc, m.rd, m.ra]);
      expect(theirs.questions!.map((q) => [q.name, dnsPacket.decode(dnsPacket.encode({ questions: [q] })).questions![0]!.type]), ctx).toEqual(
        m.questions.map((q) => [q.name, ({ 1: 'A', 28: 'AAAA', 5: 'CNAME', 15: 'MX', 16: 'TXT' } as Record<number, string>)[q.type]]),
      );
      const norm = normalise(m);
      expect(theirs.answers!.map(fromTheirs), ctx).toEqual(norm.answers);
      expect(theirs.authorities!.map(fromTheirs), ctx).toEqual(norm.authorities);
      const opt = theirs.additionals!.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
      expect(theirs.additionals!.filter((a) => a.type !== 'OPT').map(fromTheirs), ctx).toEqual(norm.additionals);
      expect(opt?.udpPayloadSize, ctx).toBe(m.edns?.udpSize);
    }
  });

  it('we decode 400 messages dns-packet encoded to the same content', () => {
    const rnd = seededRandom(seed + 1);
    for (let i = 0; i < 400; i++) {
      const m = genMessage(rnd);
      m.z = m.ad = m.cd = false;
      const additionals: dnsPacket.Answer[] = m.additionals.map(toTheirs);
      if (m.edns) additionals.push({ type: 'OPT', name: '.', udpPayloadSize: m.edns.udpSize, flags: m.edns.dnssecOk ? 0x8000 : 0, options: [] } as unknown as dnsPacket.OptAnswer);
      const flags = (m.aa ? 0x400 : 0) | (m.tc ? 0x200 : 0) | (m.rd ? 0x100 : 0) | (m.ra ? 0x80 : 0) | m.rcode;
      const buf = dnsPacket.encode({
        id: m.id,
        type: m.qr ? 'response' : 'query',
        flags,
        questions: m.questions.map((q) => ({ name: q.name, type: ({ 1: 'A', 28: 'AAAA', 5: 'CNAME', 15: 'MX', 16: 'TXT' } as Record<number, string>)[q.type]! as 'A', class: 'IN' })),
        answers: m.answers.map(toTheirs),
        authorities: m.authorities.map(toTheirs),
        additionals,
      });
      const ours = parseDns(new Uint8Array(buf));
      expect(ours, `seed ${seed + 1}, message ${i}`).toEqual(normalise(m));
    }
  });
});
