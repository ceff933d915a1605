/**
 * Zone files (RFC 1035 section 5) and the authoritative server's answers built from them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError, UP_DEFAULTS, validateUpArgs } from '../../src/cli/up.js';
import { DnsServer, TcpFramer, frameTcp } from '../../src/dns/server.js';
import type { DnsMessage } from '../../src/dns/wire.js';
import { CLASS_IN, RCODE, TYPE, dnsMessage, parseDns, writeDns } from '../../src/dns/wire.js';
import { defaultZones } from '../../src/dns/zone.js';
import { ZoneFileError, parseTtl, parseZoneFile } from '../../src/dns/zonefile.js';

const ZONE = `; a zone for tests
$ORIGIN example.test.
$TTL 1h
@   IN  SOA ns admin ( 2024010101 ; serial
                       3600 900 1w 60 )
    IN  NS   ns
    IN  MX   10 mail
    IN  TXT  "v=spf1 -all" "two; words" unquoted
ns      IN A 10.78.0.53
mail 300 IN A 10.78.0.25
mail     IN AAAA 2001:DB8::25
www  IN 60 CNAME web
web      A 10.78.0.80
deep.a.b  A 10.78.0.99
loop1 CNAME loop2
loop2 CNAME loop1
out   CNAME elsewhere.example.
`;

function zoneError(text: string, file = 'z.zone'): string {
  try {
    parseZoneFile(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ZoneFileError);
    return (e as Error).message;
  }
  throw new Error('expected a zone file error');
}

const HEAD = '$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 2 3 4 5\n';

describe('zone file parser', () => {
  it('reads $ORIGIN, $TTL, every type, parentheses, comments, quoted strings and blank owners', () => {
    const z = parseZoneFile(ZONE, 'example.zone');
    expect(z.origin).toBe('example.test');
    expect(z.soa).toMatchObject({ mname: 'ns.example.test', rname: 'admin.example.test', serial: 2024010101, expire: 604800, minimum: 60, ttl: 3600 });
    const apex = z.lookup('example.test')!;
    expect(apex.map((r) => r.type)).toEqual(['SOA', 'NS', 'MX', 'TXT']);
    const txt = apex.find((r) => r.type === 'TXT') as { strings: Uint8Array[] };
    expect(txt.strings.map((s) => Buffer.from(s).toString())).toEqual(['v=spf1 -all', 'two; words', 'unquoted']);
    expect(z.lookup('mail.example.test')).toMatchObject([{ type: 'A', ttl: 300 }, { type: 'AAAA', address: '2001:db8::25', ttl: 3600 }]);
    expect(z.lookup('www.example.test')).toMatchObject([{ type: 'CNAME', target: 'web.example.test', ttl: 60 }]);
    expect(z.lookup('a.b.example.test')).toEqual([]); // empty non-terminal
    expect(z.lookup('nope.example.test')).toBeUndefined();
  });

  it('parses TTLs in seconds and in units', () => {
    expect([parseTtl('300'), parseTtl('1h30m'), parseTtl('1W'), parseTtl('2d'), parseTtl('1h1'), parseTtl('x'), parseTtl('99999999999')]).toEqual([300, 5400, 604800, 172800, undefined, undefined, undefined]);
  });

  it('says what is wrong, with file and line, for every mistake', () => {
    const cases: Array<[string, string]> = [
      ['www A 10.0.0.1\n', 'z.zone:1: the relative name "www" needs an $ORIGIN (or end it with a dot)'],
      ['$ORIGIN example.test\n', 'z.zone:1: $ORIGIN must be an absolute name ending with a dot (got "example.test")'],
      ['$TTL forever\n', 'z.zone:1: "forever" is not a TTL (seconds, or like 1h30m)'],
      ['$INCLUDE other.zone\n', 'z.zone:1: $INCLUDE is not supported: put the records in this file'],
      ['$GENERATE 1-10 a$ A 10.0.0.$\n', 'z.zone:1: unknown directive $GENERATE (supported: $ORIGIN, $TTL)'],
      ['$ORIGIN example.test.\n@ SOA ns admin 1 2 3 4 5\n', 'z.zone:2: no TTL: give one on the record or set $TTL first'],
      [HEAD + 'www A 10.0.0.256\n', 'z.zone:4: "10.0.0.256" is not an IPv4 address'],
      [HEAD + 'www AAAA 2001:db8::1::2\n', 'z.zone:4: "2001:db8::1::2" is not an IPv6 address'],
      [HEAD + 'www A\n', 'z.zone:4: A needs one IPv4 address'],
      [HEAD + 'www A 10.0.0.1 10.0.0.2\n', 'z.zone:4: unexpected "10.0.0.2" after the A data (A takes one IPv4 address)'],
      [HEAD + 'www MX ten mail\n', 'z.zone:4: MX preference must be a number from 0 to 65535 (got "ten")'],
      [HEAD + 'www SRV 0 0 80 web\n', 'z.zone:4: record type SRV is not supported (supported: SOA, NS, A, AAAA, CNAME, MX, TXT, PTR)'],
      [HEAD + 'www CH A 10.0.0.1\n', 'z.zone:4: class CH is not supported: only IN'],
      [HEAD + 'www TXT "open\n', 'z.zone:4: a quoted string is not closed before the end of the line'],
      [HEAD + `www TXT "${'x'.repeat(256)}"\n`, 'z.zone:4: a TXT string is at most 255 bytes (this one has 256): split it into several strings'],
      [HEAD + 'www A ( 10.0.0.1\n', 'z.zone:4: a "(" is never closed'],
      [HEAD + 'www A 10.0.0.1 )\n', 'z.zone:4: a ")" without an opening "("'],
      [HEAD + `${'a'.repeat(64)} A 10.0.0.1\n`, `z.zone:4: "${'a'.repeat(64)}" is not a valid domain name (labels of 1..63 characters, 255 in all)`],
      [HEAD + 'other.test. A 10.0.0.1\n', 'z.zone:4: other.test is outside the zone example.test (its SOA is on line 3)'],
      [HEAD + '@ SOA ns admin 1 2 3 4 5\n', 'z.zone:4: a second SOA record (the first is on line 3): a zone has exactly one'],
      [HEAD + 'www CNAME web\nwww A 10.0.0.1\n', 'z.zone:4: www.example.test has a CNAME and other records (line 5): a CNAME must be the only record of its name'],
      [HEAD + 'www CNAME web\nwww CNAME web2\n', 'z.zone:5: a second CNAME for www.example.test (the first is on line 4): a name has at most one'],
      ['$ORIGIN example.test.\n$TTL 1\n@ SOA ns admin x 2 3 4 5\n', 'z.zone:3: the SOA serial must be a number from 0 to 4294967295 (got "x")'],
      ['$ORIGIN example.test.\n$TTL 1\nwww A 10.0.0.1\n', 'z.zone:1: the zone has no SOA record: every zone starts with one'],
      ['  A 10.0.0.1\n', 'z.zone:1: a record without an owner name must follow one with an owner'],
      ['$ORIGIN example.test.\n$TTL 1\n@ SOA ns admin 1 2 3 4\n', 'z.zone:3: SOA needs mname, rname, serial, refresh, retry, expire and minimum'],
    ];
    for (const [text, message] of cases) expect(zoneError(text), text).toBe(message);
  });
});

describe('authoritative server', () => {
  const zone = parseZoneFile(ZONE, 'example.zone');
  const server = new DnsServer([zone, ...defaultZones('10.77.0.2')]);

  function ask(name: string, type: number, fields: Partial<DnsMessage> = {}, transport: 'udp' | 'tcp' = 'udp'): DnsMessage {
    const q = writeDns(dnsMessage({ id: 0x1234, rd: true, questions: [{ name, type, class: CLASS_IN }], ...fields }));
    const res = server.answer(q, transport);
    if (!res) throw new Error('dropped');
    const m = parseDns(res);
    if ('error' in m) throw new Error(m.error);
    expect(m.id).toBe(0x1234);
    expect(m.qr).toBe(true);
    return m;
  }

  it('answers with AA, copies RD, and offers no recursion', () => {
    const m = ask('netstack.test', TYPE.A);
    expect([m.rcode, m.aa, m.rd, m.ra]).toEqual([RCODE.NOERROR, true, true, false]);
    expect(m.answers).toMatchObject([{ type: 'A', address: '10.77.0.2', name: 'netstack.test' }]);
    expect(ask('2.0.77.10.in-addr.arpa', TYPE.PTR).answers).toMatchObject([{ type: 'PTR', target: 'netstack.test' }]);
  });

  it('follows CNAMEs inside its zones, and stops at a target outside them or a loop', () => {
    expect(ask('WWW.example.test', TYPE.A).answers.map((r) => r.type)).toEqual(['CNAME', 'A']);
    expect(ask('out.example.test', TYPE.A).answers.map((r) => r.type)).toEqual(['CNAME']);
    const loop = ask('loop1.example.test', TYPE.A);
    expect(loop.answers.map((r) => r.name)).toEqual(['loop1.example.test', 'loop2.example.test']);
    expect(ask('www.example.test', TYPE.CNAME).answers).toHaveLength(1);
  });

  it('adds the addresses of MX targets it holds (additional section processing)', () => {
    const m = ask('example.test', TYPE.MX);
    expect(m.additionals.map((r) => r.type).sort()).toEqual(['A', 'AAAA']);
  });

  it('answers NXDOMAIN with the SOA, NODATA with the SOA, REFUSED outside its zones', () => {
    const nx = ask('nope.example.test', TYPE.A);
    expect([nx.rcode, nx.aa, nx.answers.length]).toEqual([RCODE.NXDOMAIN, true, 0]);
    expect(nx.authorities).toMatchObject([{ type: 'SOA', ttl: 60 }]); // min(SOA TTL, MINIMUM)
    const nodata = ask('web.example.test', TYPE.AAAA);
    expect([nodata.rcode, nodata.authorities[0]?.type]).toEqual([RCODE.NOERROR, 'SOA']);
    expect(ask('a.b.example.test', TYPE.A).rcode).toBe(RCODE.NOERROR); // exists, empty
    const refused = ask('example.com', TYPE.A);
    expect([refused.rcode, refused.aa]).toEqual([RCODE.REFUSED, false]);
    expect(ask('example.test', TYPE.AXFR).rcode).toBe(RCODE.REFUSED);
  });

  it('answers NOTIMP for other opcodes, FORMERR for garbage and for two questions, and drops what it cannot answer', () => {
    expect(ask('example.test', TYPE.A, { opcode: 2 }).rcode).toBe(RCODE.NOTIMP);
    const garbage = Uint8Array.of(0xab, 0xcd, 0x01, 0, 0, 5, 0, 0, 0, 0, 0, 0, 3, 0x61);
    const fe = parseDns(server.answer(garbage, 'udp')!) as DnsMessage;
    expect([fe.id, fe.rcode]).toEqual([0xabcd, RCODE.FORMERR]);
    const two = writeDns(dnsMessage({ id: 1, questions: [{ name: 'a.test', type: 1, class: 1 }, { name: 'b.test', type: 1, class: 1 }] }));
    expect((parseDns(server.answer(two, 'udp')!) as DnsMessage).rcode).toBe(RCODE.FORMERR);
    expect(server.answer(Uint8Array.of(1, 2, 3), 'udp')).toBeUndefined();
    expect(server.answer(writeDns(dnsMessage({ id: 1, qr: true })), 'udp')).toBeUndefined();
  });

  it('answers an unknown EDNS version with BADVERS and echoes EDNS otherwise', () => {
    const bad = ask('example.test', TYPE.A, { edns: { udpSize: 4096, extendedRcode: 0, version: 1, dnssecOk: false, options: [] } });
    expect([bad.rcode, bad.edns?.extendedRcode]).toEqual([0, 1]);
    const good = ask('example.test', TYPE.MX, { edns: { udpSize: 4096, extendedRcode: 0, version: 0, dnssecOk: false, options: [] } });
    expect(good.edns?.udpSize).toBe(1232);
  });

  it('truncates over 512 bytes (or the EDNS size) on UDP with TC, and answers in full over TCP', () => {
    const many = Array.from({ length: 60 }, (_, i) => `big A 10.1.0.${i + 1}`).join('\n');
    const big = new DnsServer([parseZoneFile(`$ORIGIN big.test.\n$TTL 60\n@ SOA ns admin 1 2 3 4 5\n${many}\n`, 'big.zone')]);
    const q = (edns?: number) =>
      writeDns(dnsMessage({ id: 7, questions: [{ name: 'big.big.test', type: TYPE.A, class: CLASS_IN }], ...(edns ? { edns: { udpSize: edns, extendedRcode: 0, version: 0, dnssecOk: false, options: [] } } : {}) }));
    const udp = big.answer(q(), 'udp')!;
    const m = parseDns(udp) as DnsMessage;
    expect([m.tc, m.answers.length, udp.length <= 512]).toEqual([true, 0, true]);
    // 60 A records: ~ 30 + 60 * 16 = 990 bytes: fits an EDNS size of 1232, not 512.
    expect((parseDns(big.answer(q(1232), 'udp')!) as DnsMessage).answers).toHaveLength(60);
    const tcp = parseDns(big.answer(q(), 'tcp')!) as DnsMessage;
    expect([tcp.tc, tcp.answers.length]).toEqual([false, 60]);
  });

  it('frames TCP messages with a length prefix and splits any byte stream back into messages', () => {
    const msgs = [Uint8Array.of(1, 2, 3), new Uint8Array(300).fill(7), Uint8Array.of(9)];
    const stream = Buffer.concat(msgs.map((m) => frameTcp(m)));
    for (let cut = 1; cut < stream.length; cut += 37) {
      const f = new TcpFramer();
      const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
      expect(got.map((g) => Array.from(g))).toEqual(msgs.map((m) => Array.from(m)));
      expect(f.pending).toBe(0);
    }
  });
});

describe('netstack up --dns-zone', () => {
  const upArgs = { ...UP_DEFAULTS, mtu: '1500', port: '80' };

  it('serves the built-in zones with --dns, and a zone file beside them (replacing one of the same origin)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netstack-zone-'));
    try {
      const file = join(dir, 'ok.zone');
      writeFileSync(file, '$ORIGIN netstack.test.\n$TTL 60\n@ SOA ns admin 1 2 3 4 5\nwww A 10.77.0.9\n');
      expect(validateUpArgs({ ...upArgs }).dnsZones).toBeUndefined();
      expect(validateUpArgs({ ...upArgs, dns: true }).dnsZones!.map((z) => z.origin)).toEqual(['netstack.test', '0.77.10.in-addr.arpa']);
      const zones = validateUpArgs({ ...upArgs, dnsZone: [file] }).dnsZones!;
      expect(zones.map((z) => z.origin)).toEqual(['netstack.test', '0.77.10.in-addr.arpa']);
      expect(zones[0]!.lookup('www.netstack.test')).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns a zone file mistake into one sentence with file:line, and a missing file into one sentence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netstack-zone-'));
    try {
      const file = join(dir, 'bad.zone');
      writeFileSync(file, '$ORIGIN example.test.\n$TTL 60\n@ SOA ns admin 1 2 3 4 5\nwww A 300.1.1.1\n');
      expect(() => validateUpArgs({ ...upArgs, dnsZone: [file] })).toThrow(new CliError(`${file}:4: "300.1.1.1" is not an IPv4 address`));
      expect(() => validateUpArgs({ ...upArgs, dnsZone: [join(dir, 'missing.zone')] })).toThrow(new CliError(`cannot read the zone file ${join(dir, 'missing.zone')}: it does not exist`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
