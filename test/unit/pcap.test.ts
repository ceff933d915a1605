import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { internetChecksum } from '../../src/ip/checksum.js';
import { parseIpv4, writeIpv4 } from '../../src/ip/addr.js';
import { MemoryLink } from '../../src/link/memory.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter, pcapGlobalHeader, wrapLink } from '../../src/link/pcap.js';
import { VirtualClock } from '../../src/runtime/clock.js';

const dir = mkdtempSync(join(tmpdir(), 'netstack-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = () => join(dir, `t${++fileNo}.pcap`);

/** A valid IPv4 + ICMP echo packet (checksums right), so tcpdump decodes it. */
function icmpEcho(type: 0 | 8, src: string, dst: string, seq: number, payloadLen = 8): Uint8Array {
  const p = new Uint8Array(20 + 8 + payloadLen);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64; // TTL
  p[9] = 1; // ICMP
  writeIpv4(p, 12, parseIpv4(src)!);
  writeIpv4(p, 16, parseIpv4(dst)!);
  const h = internetChecksum(p, 0, 20);
  p[10] = h >> 8;
  p[11] = h & 0xff;
  p[20] = type;
  p[24] = 0x12; // identifier 0x1234
  p[25] = 0x34;
  p[26] = seq >> 8;
  p[27] = seq & 0xff;
  for (let i = 0; i < payloadLen; i++) p[28 + i] = i;
  const c = internetChecksum(p, 20, p.length);
  p[22] = c >> 8;
  p[23] = c & 0xff;
  return p;
}

/** Parse a classic little-endian pcap file back into its parts. */
function readPcap(buf: Buffer) {
  const header = {
    magic: buf.readUInt32LE(0),
    major: buf.readUInt16LE(4),
    minor: buf.readUInt16LE(6),
    thiszone: buf.readInt32LE(8),
    sigfigs: buf.readUInt32LE(12),
    snaplen: buf.readUInt32LE(16),
    network: buf.readUInt32LE(20),
  };
  const records: Array<{ sec: number; usec: number; incl: number; orig: number; data: Buffer }> = [];
  let off = 24;
  while (off < buf.length) {
    const incl = buf.readUInt32LE(off + 8);
    records.push({
      sec: buf.readUInt32LE(off),
      usec: buf.readUInt32LE(off + 4),
      incl,
      orig: buf.readUInt32LE(off + 12),
      data: buf.subarray(off + 16, off + 16 + incl),
    });
    off += 16 + incl;
  }
  expect(off).toBe(buf.length); // records tile the file exactly
  return { header, records };
}

describe('PcapWriter', () => {
  it('writes the global header: magic, version 2.4, snaplen 65535, LINKTYPE_RAW', () => {
    const h = Buffer.from(pcapGlobalHeader());
    expect(h.toString('hex')).toBe(
      'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + 'ffff0000' + '65000000',
    );
    expect(LINKTYPE_RAW).toBe(101);
  });

  it('an opened file is a valid empty capture at once', () => {
    const f = tmpFile();
    const w = PcapWriter.open(f);
    expect(statSync(f).size).toBe(24);
    w.close();
    expect(readPcap(readFileSync(f)).records).toEqual([]);
  });

  it('records time, lengths and bytes of each packet', () => {
    const f = tmpFile();
    const w = PcapWriter.open(f);
    const a = icmpEcho(8, '10.1.2.1', '10.1.2.2', 1);
    const b = icmpEcho(0, '10.1.2.2', '10.1.2.1', 1, 100);
    w.record(a, 1_700_000_000_123.456);
    w.record(b, 1_700_000_001_999.9999); // rounds up into the next second
    w.close();
    const { header, records } = readPcap(readFileSync(f));
    expect(header).toEqual({ magic: 0xa1b2c3d4, major: 2, minor: 4, thiszone: 0, sigfigs: 0, snaplen: 65535, network: 101 });
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({ sec: 1_700_000_000, usec: 123_456, incl: a.length, orig: a.length });
    expect(records[1]).toMatchObject({ sec: 1_700_000_002, usec: 0, incl: b.length, orig: b.length });
    expect(Buffer.compare(records[0]!.data, Buffer.from(a))).toBe(0);
    expect(Buffer.compare(records[1]!.data, Buffer.from(b))).toBe(0);
  });

  it('copies the packet: later changes to the caller buffer do not leak into the file', () => {
    const f = tmpFile();
    const w = PcapWriter.open(f);
    const p = icmpEcho(8, '10.1.2.1', '10.1.2.2', 7);
    const before = Buffer.from(p);
    w.record(p, 0);
    p.fill(0xee);
    w.close();
    expect(Buffer.compare(readPcap(readFileSync(f)).records[0]!.data, before)).toBe(0);
  });

  it('truncates to the snaplen but keeps the original length', () => {
    const f = tmpFile();
    const w = PcapWriter.open(f);
    w.record(new Uint8Array(70_000).fill(0x45), 0);
    w.close();
    const r = readPcap(readFileSync(f)).records[0]!;
    expect(r.incl).toBe(65535);
    expect(r.orig).toBe(70_000);
  });

  it('buffers records instead of writing each one, and flushes on close', () => {
    const f = tmpFile();
    const w = PcapWriter.open(f);
    for (let i = 0; i < 10; i++) w.record(icmpEcho(8, '10.1.2.1', '10.1.2.2', i), 0);
    expect(statSync(f).size).toBe(24); // still in memory
    w.flush();
    expect(readPcap(readFileSync(f)).records).toHaveLength(10);
    // Past the buffer limit (64 KiB) it writes without being asked.
    for (let i = 0; i < 100; i++) w.record(icmpEcho(8, '10.1.2.1', '10.1.2.2', i, 1000), 0);
    expect(statSync(f).size).toBeGreaterThan(24 + 10 * 52 + 60 * 1044);
    w.close();
    expect(readPcap(readFileSync(f)).records).toHaveLength(110);
    w.record(icmpEcho(8, '10.1.2.1', '10.1.2.2', 1), 0); // after close: ignored
    w.close(); // idempotent
    expect(readPcap(readFileSync(f)).records).toHaveLength(110);
  });

  it('wrapLink records both directions and passes packets through unchanged', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair(clock);
    const f = tmpFile();
    const w = PcapWriter.open(f);
    const wrapped = wrapLink(a, w);
    const gotA: Uint8Array[] = [];
    const gotB: Uint8Array[] = [];
    wrapped.onReceive((ps) => gotA.push(...ps));
    b.onReceive((ps) => gotB.push(...ps));
    const req = icmpEcho(8, '10.1.2.1', '10.1.2.2', 1);
    const rep = icmpEcho(0, '10.1.2.2', '10.1.2.1', 1);
    wrapped.send([req]);
    b.send([rep]);
    clock.advance(1);
    expect(gotB).toEqual([req]);
    expect(gotA).toEqual([rep]);
    expect(wrapped.mtu).toBe(1500);
    wrapped.close();
    w.close();
    const recs = readPcap(readFileSync(f)).records;
    expect(recs.map((r) => r.data[20])).toEqual([8, 0]); // request out, reply in
  });

  const tcpdump = spawnSync('tcpdump', ['--version'], { encoding: 'utf8' });
  it.skipIf(tcpdump.error !== undefined)('tcpdump -r decodes the file', () => {
    const f = tmpFile();
    const w = PcapWriter.open(f);
    w.record(icmpEcho(8, '10.9.8.1', '10.9.8.2', 5, 56), 1_700_000_000_000);
    w.record(icmpEcho(0, '10.9.8.2', '10.9.8.1', 5, 56), 1_700_000_000_250);
    w.close();
    const r = spawnSync('tcpdump', ['-n', '-r', f], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('link-type RAW');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/10\.9\.8\.1 > 10\.9\.8\.2: ICMP echo request, id 4660, seq 5, length 64/);
    expect(lines[1]).toMatch(/10\.9\.8\.2 > 10\.9\.8\.1: ICMP echo reply, id 4660, seq 5, length 64/);
  });
});

describe('pcap link type', () => {
  it('is LINKTYPE_RAW (101) for TUN and LINKTYPE_ETHERNET (1) for TAP', () => {
    const linktype = (h: Uint8Array) => new DataView(h.buffer, h.byteOffset).getUint32(20, true);
    expect(linktype(pcapGlobalHeader())).toBe(LINKTYPE_RAW);
    expect(LINKTYPE_RAW).toBe(101);
    expect(linktype(pcapGlobalHeader(65535, LINKTYPE_ETHERNET))).toBe(1);
  });
});
