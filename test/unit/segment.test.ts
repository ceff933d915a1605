import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import {
  ACK,
  CWR,
  ECE,
  FIN,
  PSH,
  RST,
  SYN,
  TCP_DROP_REASONS,
  TCP_HEADER_LEN,
  URG,
  formatSegment,
  optionsLength,
  parseTcp,
  segmentLength,
  writeTcp,
  type TcpOptions,
  type TcpSegment,
} from '../../src/tcp/segment.js';
import { ok, u32 } from '../helpers/unit.js';

const mulberry32 = seededRandom;
const int = (r: () => number, n: number) => Math.floor(r() * n);

const SRC = 0x0a000001; // 10.0.0.1
const DST = 0xc0a80102; // 192.168.1.2

/** A deliberately naive RFC 1071 checksum, independent of src/ip/checksum.ts. */
function naiveTcpChecksum(seg: Uint8Array, src: number, dst: number): number {
  const words: number[] = [src >>> 16, src & 0xffff, dst >>> 16, dst & 0xffff, 6, seg.length];
  for (let i = 0; i < seg.length; i += 2) words.push((seg[i]! << 8) | (i + 1 < seg.length ? seg[i + 1]! : 0));
  let sum = 0;
  for (const w of words) {
    sum += w;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

/** Build a segment with writeTcp: payload first (at its final offset), then the header. */
function build(
  fields: Partial<Parameters<typeof writeTcp>[2]> & { options?: TcpOptions },
  payload: Uint8Array = new Uint8Array(0),
  off = 0,
): { buf: Uint8Array; seg: Uint8Array; hlen: number } {
  const o = fields.options ?? {};
  const hlen = TCP_HEADER_LEN + optionsLength(o);
  const buf = new Uint8Array(off + hlen + payload.length + 7);
  buf.set(payload, off + hlen);
  const written = writeTcp(
    buf,
    off,
    { srcPort: 1234, dstPort: 80, seq: 1, ack: 0, flags: ACK, window: 65535, ...fields, options: o },
    payload.length,
    SRC,
    DST,
  );
  expect(written).toBe(hlen);
  return { buf, seg: buf.subarray(off, off + hlen + payload.length), hlen };
}

/** A segment with raw option bytes (any garbage) and a correct checksum. */
function withRawOptions(opts: number[], payload: number[] = [], dataOffsetOverride?: number): Uint8Array {
  const padded = [...opts];
  while (padded.length % 4 !== 0) padded.push(0);
  const seg = new Uint8Array(20 + padded.length + payload.length);
  seg.set([0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0], 0);
  seg[12] = ((dataOffsetOverride ?? (20 + padded.length) / 4) & 0xf) << 4;
  seg[13] = ACK;
  seg[14] = 0xff;
  seg[15] = 0xff;
  seg.set(padded, 20);
  seg.set(payload, 20 + padded.length);
  const c = naiveTcpChecksum(seg, SRC, DST);
  seg[16] = c >>> 8;
  seg[17] = c & 0xff;
  return seg;
}

describe('writeTcp + parseTcp round trip', () => {
  it('round-trips every header field and all options at once (40 bytes of options)', () => {
    const payload = new TextEncoder().encode('hello, world');
    const options: TcpOptions = {
      mss: 1460,
      wscale: 7,
      sackPermitted: true,
      timestamp: { value: 0xdeadbeef, echo: 0x01020304 },
      sack: [
        [0xfffffff0, 0x00000010],
        [100, 200],
      ],
    };
    expect(optionsLength(options)).toBe(40);
    const { buf, seg } = build(
      { srcPort: 54321, dstPort: 443, seq: 0xfffffffe, ack: 0x80000001, flags: SYN | ACK | ECE | CWR, window: 29200, urgentPointer: 7, options },
      payload,
      14,
    );
    const s = ok(parseTcp(seg, SRC, DST));
    expect(s).toMatchObject({
      srcPort: 54321,
      dstPort: 443,
      seq: 0xfffffffe,
      ack: 0x80000001,
      dataOffset: 60,
      flags: SYN | ACK | ECE | CWR,
      window: 29200,
      urgentPointer: 7,
    });
    expect(s.options).toEqual(options);
    expect(Array.from(s.payload)).toEqual(Array.from(payload));
    // The payload is a view into the packet, not a copy.
    expect(s.payload.buffer).toBe(buf.buffer);
    expect(s.payload.byteOffset).toBe(14 + 60);
    expect(s.checksum).toBe(naiveTcpChecksum(new Uint8Array([...seg.subarray(0, 16), 0, 0, ...seg.subarray(18)]), SRC, DST));
  });

  it('every combination of options round-trips (seeded values)', () => {
    const r = mulberry32(11);
    for (let mask = 0; mask < 32; mask++) {
      for (let rep = 0; rep < 20; rep++) {
        const o: TcpOptions = {};
        if (mask & 1) o.mss = int(r, 65536);
        if (mask & 2) o.wscale = int(r, 15);
        if (mask & 4) o.sackPermitted = true;
        if (mask & 8) o.timestamp = { value: u32(r), echo: u32(r) };
        if (mask & 16) o.sack = Array.from({ length: 1 + int(r, 2) }, (): [number, number] => [u32(r), u32(r)]);
        const payload = Uint8Array.from({ length: int(r, 50) }, () => int(r, 256));
        const { seg, hlen } = build({ seq: u32(r), ack: u32(r), flags: int(r, 256), window: int(r, 65536), options: o }, payload);
        expect(hlen % 4).toBe(0);
        const s = ok(parseTcp(seg, SRC, DST));
        expect(s.options).toEqual(o);
        expect(s.dataOffset).toBe(hlen);
        expect(Array.from(s.payload)).toEqual(Array.from(payload));
      }
    }
  });

  it('writes a checksum that an independent RFC 1071 implementation verifies (odd payload lengths too)', () => {
    const r = mulberry32(12);
    for (let n = 0; n < 200; n++) {
      const payload = Uint8Array.from({ length: int(r, 300) }, () => int(r, 256));
      const { seg } = build({ seq: u32(r), options: n % 2 ? { mss: 536 } : {} }, payload);
      // Summing over a segment that includes its checksum gives 0 when it is right.
      expect(naiveTcpChecksum(seg, SRC, DST)).toBe(0);
    }
  });

  it('lays out a SYN like Linux: mss, sackOK, TS, nop, wscale (20 bytes)', () => {
    const { seg } = build({
      flags: SYN,
      options: { mss: 1460, sackPermitted: true, timestamp: { value: 1, echo: 0 }, wscale: 7 },
    });
    expect(seg[12]! >> 4).toBe(10);
    expect(Array.from(seg.subarray(20, 40))).toEqual([
      2, 4, 0x05, 0xb4, // mss 1460
      4, 2, // sackOK
      8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // TS val 1 ecr 0
      1, 3, 3, 7, // nop, wscale 7
    ]);
  });

  it('optionsLength is always a multiple of 4 and drops SACK blocks that do not fit in 40 bytes', () => {
    const four: Array<[number, number]> = [[1, 2], [3, 4], [5, 6], [7, 8]];
    expect(optionsLength({})).toBe(0);
    expect(optionsLength({ mss: 1 })).toBe(4);
    expect(optionsLength({ sackPermitted: true })).toBe(4);
    expect(optionsLength({ wscale: 0 })).toBe(4);
    expect(optionsLength({ timestamp: { value: 0, echo: 0 } })).toBe(12);
    expect(optionsLength({ sack: [] })).toBe(0);
    expect(optionsLength({ sack: four })).toBe(36);
    // With timestamps only 3 blocks fit (RFC 2018 §3): 12 + 4 + 24 = 40.
    const o: TcpOptions = { timestamp: { value: 9, echo: 8 }, sack: four };
    expect(optionsLength(o)).toBe(40);
    const s = ok(parseTcp(build({ options: o }).seg, SRC, DST));
    expect(s.options.sack).toEqual(four.slice(0, 3));
  });

  it('writes no options and a 20-byte header by default', () => {
    const { seg } = build({ flags: RST });
    expect(seg.length).toBe(20);
    const s = ok(parseTcp(seg, SRC, DST));
    expect(s.options).toEqual({});
    expect(s.payload.length).toBe(0);
  });

  it('rejects field values that do not fit (caller bugs, loudly)', () => {
    const buf = new Uint8Array(100);
    const base = { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0, window: 0 };
    expect(() => writeTcp(buf, 0, { ...base, window: 65536 }, 0, SRC, DST)).toThrow(RangeError);
    expect(() => writeTcp(buf, 0, { ...base, srcPort: -1 }, 0, SRC, DST)).toThrow(RangeError);
    expect(() => writeTcp(buf, 0, { ...base, options: { wscale: 15 } }, 0, SRC, DST)).toThrow(RangeError);
    expect(() => writeTcp(buf, 0, { ...base, options: { mss: 70000 } }, 0, SRC, DST)).toThrow(RangeError);
    expect(() => writeTcp(buf, 90, base, 0, SRC, DST)).toThrow(RangeError);
    expect(() => writeTcp(buf, 0, base, 81, SRC, DST)).toThrow(RangeError);
    expect(writeTcp(buf, 0, base, 80, SRC, DST)).toBe(20);
  });
});

describe('parseTcp: option parsing', () => {
  it('skips unknown options by their length, and NOPs', () => {
    const s = ok(parseTcp(withRawOptions([1, 1, 30, 6, 9, 9, 9, 9, 2, 4, 0x02, 0x18]), SRC, DST));
    expect(s.options).toEqual({ mss: 536 });
  });

  it('stops at EOL and ignores whatever follows it', () => {
    const s = ok(parseTcp(withRawOptions([3, 3, 2, 0, 0xff, 0x00, 0x55]), SRC, DST));
    expect(s.options).toEqual({ wscale: 2 });
  });

  it('caps a window scale above 14 at 14 (RFC 7323 §2.3)', () => {
    expect(ok(parseTcp(withRawOptions([3, 3, 15]), SRC, DST)).options.wscale).toBe(14);
    expect(ok(parseTcp(withRawOptions([3, 3, 255]), SRC, DST)).options.wscale).toBe(14);
  });

  it('keeps the payload after the options', () => {
    const s = ok(parseTcp(withRawOptions([4, 2], [1, 2, 3]), SRC, DST));
    expect(s.options).toEqual({ sackPermitted: true });
    expect(Array.from(s.payload)).toEqual([1, 2, 3]);
  });

  const hostile: Array<[string, number[]]> = [
    ['length 0 (would loop forever)', [30, 0, 0, 0]],
    ['length 1', [30, 1, 0, 0]],
    ['length past the header end', [30, 8, 0, 0]],
    ['kind in the last byte with no length byte', [1, 1, 1, 30]],
    ['MSS with length 3', [2, 3, 5, 1]],
    ['MSS with length 6', [2, 6, 5, 1, 0, 0, 0, 0]],
    ['window scale with length 4', [3, 4, 7, 0]],
    ['SACK-permitted with length 3', [4, 3, 0, 0]],
    ['SACK with no blocks', [5, 2, 0, 0]],
    ['SACK with a partial block', [5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0]],
    ['timestamps with length 9', [8, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]],
    ['a good option followed by a bad one', [2, 4, 5, 180, 3, 0, 0, 0]],
  ];
  for (const [name, bytes] of hostile) {
    it(`ignores ${name}, not the segment, and flags it (as Linux)`, () => {
      const s = parseTcp(withRawOptions(bytes), SRC, DST);
      if ('error' in s) throw new Error(`dropped: ${s.error}`);
      expect(s.badOptions).toBe(true);
      expect(s.payload.length).toBe(0);
      // Only what parsed cleanly before the bad option survives.
      expect(s.options).toEqual(name === 'a good option followed by a bad one' ? { mss: 1460 } : {});
    });
  }
  it('[opt.malformed-ignored] a malformed option is ignored, not the segment: a wrong length of a known option is skipped by its length, a bad length ends the options (as Linux)', () => {
    const s = parseTcp(withRawOptions([2, 3, 5, 1, 4, 2, 1, 1]), SRC, DST); // MSS len 3, then sackOK
    if ('error' in s) throw new Error(s.error);
    expect([s.options, s.badOptions]).toEqual([{ sackPermitted: true }, true]);
    const ok = parseTcp(withRawOptions([2, 4, 5, 180]), SRC, DST);
    if ('error' in ok) throw new Error(ok.error);
    expect(ok.badOptions).toBeUndefined();
  });
});

describe('parseTcp: hostile headers', () => {
  it('reports a header shorter than 20 bytes as truncated', () => {
    expect(parseTcp(new Uint8Array(0), SRC, DST)).toEqual({ error: 'truncated' });
    const { seg } = build({});
    expect(parseTcp(seg.subarray(0, 19), SRC, DST)).toEqual({ error: 'truncated' });
  });

  it('reports a data offset below 20 bytes', () => {
    for (const words of [0, 1, 4]) {
      expect(parseTcp(withRawOptions([], [1, 2, 3, 4], words), SRC, DST)).toEqual({ error: 'bad-data-offset' });
    }
  });

  it('reports a data offset past the end of the buffer', () => {
    // Claims 60 bytes of header, has 24.
    expect(parseTcp(withRawOptions([1, 1, 1, 1], [], 15), SRC, DST)).toEqual({ error: 'bad-data-offset' });
    // Header exactly filling the buffer is fine.
    expect('error' in parseTcp(withRawOptions([1, 1, 1, 1], [], 6), SRC, DST)).toBe(false);
  });

  it('reports a corrupted segment as bad-checksum, and can skip the check', () => {
    const payload = Uint8Array.from([10, 20, 30, 40, 50]);
    const { seg } = build({ options: { mss: 1400 } }, payload);
    expect('error' in parseTcp(seg, SRC, DST)).toBe(false);
    seg[seg.length - 1]! ^= 0x01;
    expect(parseTcp(seg, SRC, DST)).toEqual({ error: 'bad-checksum' });
    expect(ok(parseTcp(seg, SRC, DST, false)).payload[4]).toBe(51);
    seg[seg.length - 1]! ^= 0x01;
    // The pseudo-header counts: the same bytes from another address fail.
    expect(parseTcp(seg, SRC + 1, DST)).toEqual({ error: 'bad-checksum' });
    expect(parseTcp(seg, SRC, DST ^ 0x100)).toEqual({ error: 'bad-checksum' });
  });

  it('reports port 0 as bad-ports', () => {
    expect(parseTcp(build({ srcPort: 0 }).seg, SRC, DST)).toEqual({ error: 'bad-ports' });
    expect(parseTcp(build({ dstPort: 0 }).seg, SRC, DST)).toEqual({ error: 'bad-ports' });
  });

  it('fuzz: random buffers never throw and always give a known reason (seeded, 5000 cases)', () => {
    const r = mulberry32(13);
    const reasons = new Set<string>(TCP_DROP_REASONS);
    for (let n = 0; n < 5000; n++) {
      const buf = Uint8Array.from({ length: int(r, 80) }, () => int(r, 256));
      // Make about half of them plausible so the option parser gets exercised.
      if (buf.length >= 20 && r() < 0.5) buf[12] = (5 + int(r, Math.min(11, (buf.length - 20) / 4 + 1))) << 4;
      const res = parseTcp(buf, u32(r), u32(r), r() < 0.2);
      if ('error' in res) expect(reasons.has(res.error)).toBe(true);
      else checkInvariants(res, buf);
    }
  });

  it('fuzz: valid segments with random byte flips, checksum off (seeded, 5000 cases)', () => {
    const r = mulberry32(14);
    const reasons = new Set<string>(TCP_DROP_REASONS);
    let parsed = 0, badOption = 0;
    for (let n = 0; n < 5000; n++) {
      const { seg } = build(
        {
          options: {
            mss: 1460,
            wscale: 3,
            sackPermitted: r() < 0.5,
            timestamp: { value: u32(r), echo: u32(r) },
            sack: r() < 0.5 ? [[u32(r), u32(r)]] : undefined,
          },
        },
        Uint8Array.from({ length: int(r, 20) }, () => int(r, 256)),
      );
      for (let k = 1 + int(r, 4); k > 0; k--) seg[20 + int(r, seg.length - 20)] = int(r, 256);
      const res = parseTcp(seg, SRC, DST, false);
      if ('error' in res) {
        expect(reasons.has(res.error)).toBe(true);
      } else {
        parsed++;
        if (res.badOptions) badOption++;
        checkInvariants(res, seg);
      }
    }
    // Both outcomes must actually occur, or the fuzzing exercised nothing.
    expect(parsed).toBeGreaterThan(100);
    expect(badOption).toBeGreaterThan(100);
  });
});

function checkInvariants(s: TcpSegment, buf: Uint8Array): void {
  expect(s.dataOffset).toBeGreaterThanOrEqual(20);
  expect(s.dataOffset).toBeLessThanOrEqual(buf.length);
  expect(s.payload.length).toBe(buf.length - s.dataOffset);
  expect(s.srcPort).toBeGreaterThan(0);
  expect(s.dstPort).toBeGreaterThan(0);
  if (s.options.wscale !== undefined) expect(s.options.wscale).toBeLessThanOrEqual(14);
  if (s.options.sack !== undefined) {
    expect(s.options.sack.length).toBeGreaterThanOrEqual(1);
    expect(s.options.sack.length).toBeLessThanOrEqual(4);
  }
}

describe('segmentLength', () => {
  it('counts SYN and FIN as one each (RFC 9293 §3.4)', () => {
    const p = new Uint8Array(5);
    expect(segmentLength({ flags: SYN, payload: new Uint8Array(0) })).toBe(1);
    expect(segmentLength({ flags: ACK | FIN, payload: p })).toBe(6);
    expect(segmentLength({ flags: SYN | FIN, payload: p })).toBe(7);
    expect(segmentLength({ flags: ACK | PSH, payload: p })).toBe(5);
  });
});

describe('formatSegment', () => {
  const fmt = (f: Parameters<typeof build>[0], payload?: Uint8Array) =>
    formatSegment(ok(parseTcp(build(f, payload).seg, SRC, DST)));

  it('prints a SYN packetdrill-style', () => {
    expect(
      fmt({ flags: SYN, seq: 1000, window: 65535, options: { mss: 1460, sackPermitted: true, timestamp: { value: 7, echo: 0 }, wscale: 7 } }),
    ).toBe('S 1000:1000(0) win 65535 <mss 1460,sackOK,TS val 7 ecr 0,wscale 7>');
  });

  it('prints flags in tcpdump order with . for ACK, and the ack number only with ACK', () => {
    expect(fmt({ flags: SYN | ACK, seq: 5, ack: 1001, window: 100 })).toBe('S. 5:5(0) ack 1001 win 100');
    expect(fmt({ flags: FIN | PSH | ACK, seq: 10, ack: 3, window: 9 }, new Uint8Array(4))).toBe('FP. 10:14(4) ack 3 win 9');
    expect(fmt({ flags: RST, seq: 0, ack: 77, window: 0 })).toBe('R 0:0(0) win 0');
    expect(fmt({ flags: URG | ACK, seq: 1, ack: 2, window: 3, urgentPointer: 1 }, new Uint8Array(1))).toBe(
      '.U 1:2(1) ack 2 win 3 urg 1',
    );
    expect(fmt({ flags: 0, seq: 1, window: 3 })).toBe('none 1:1(0) win 3');
  });

  it('wraps the end sequence number and prints SACK blocks', () => {
    expect(fmt({ flags: ACK, seq: 0xfffffffe, ack: 1, window: 1, options: { sack: [[10, 20], [30, 40]] } }, new Uint8Array(4))).toBe(
      '. 4294967294:2(4) ack 1 win 1 <sack 10:20 30:40>',
    );
  });
});
