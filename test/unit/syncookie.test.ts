import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import { seededRandom } from '../../src/runtime/random.js';
import { COOKIE_MAX_AGE, COOKIE_MSS_TABLE, COOKIE_PERIOD_MS, COOKIE_TS_BITS, SynCookies, cookieTimestamp, decodeCookieTimestamp } from '../../src/tcp/syncookie.js';

const US = parseIpv4('10.0.0.1')!;
const PEER = parseIpv4('10.0.0.2')!;
const secret = (seed: number) => Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + seed * 101) & 0xff);
/** A time in the middle of a cookie-clock tick. */
const T0 = 1_000 * COOKIE_PERIOD_MS + COOKIE_PERIOD_MS / 2;

describe('SynCookies: encode and check', () => {
  const cookies = new SynCookies(secret(1));
  const clientIsn = 0xfffffff0; // near the wrap, on purpose

  it.each([
    [1460, 1460],
    [9000, 1460],
    [1459, 1440],
    [1400, 1300],
    [1299, 536],
    [536, 536],
    [100, 536],
    [undefined, 536],
  ])('a SYN with MSS %s gets a cookie carrying MSS %s, which its ACK returns', (peerMss, expected) => {
    const { iss, mss } = cookies.encode(US, 80, PEER, 40000, clientIsn, peerMss, T0);
    expect(mss).toBe(expected);
    expect(cookies.check(US, 80, PEER, 40000, clientIsn, iss, T0 + 1)).toEqual({ mss: expected });
  });

  it('is a keyed function of the 4-tuple and the client ISN: any other one fails', () => {
    const { iss } = cookies.encode(US, 80, PEER, 40000, 12345, 1460, T0);
    expect(cookies.check(US, 80, PEER, 40001, 12345, iss, T0)).toBeUndefined();
    expect(cookies.check(US, 81, PEER, 40000, 12345, iss, T0)).toBeUndefined();
    expect(cookies.check(US, 80, PEER + 1, 40000, 12345, iss, T0)).toBeUndefined();
    expect(cookies.check(US, 80, PEER, 40000, 12345 + 1000, iss, T0)).toBeUndefined();
    for (let bit = 2; bit < 32; bit++) {
      expect(cookies.check(US, 80, PEER, 40000, 12345, (iss ^ (1 << bit)) >>> 0, T0), `bit ${bit}`).toBeUndefined();
    }
    // The sum is Linux's: a cookie (or client ISN) off by one or two only moves the MSS index
    // within the table. That helps nobody: changing them needs the cookie, i.e. our SYN-ACK.
    expect(cookies.check(US, 80, PEER, 40000, 12345, (iss - 1) >>> 0, T0)).toEqual({ mss: 1440 });
    expect(cookies.check(US, 80, PEER, 40000, 12346, iss, T0)).toEqual({ mss: 1440 });
    // Another key gives another cookie, which this key does not accept.
    const other = new SynCookies(secret(2)).encode(US, 80, PEER, 40000, 12345, 1460, T0).iss;
    expect(other).not.toBe(iss);
    expect(cookies.check(US, 80, PEER, 40000, 12345, other, T0)).toBeUndefined();
  });

  it(`is accepted for less than ${COOKIE_MAX_AGE} ticks of ${COOKIE_PERIOD_MS / 1000} s, never before it was made`, () => {
    const start = 1_000 * COOKIE_PERIOD_MS; // the first instant of a tick
    const { iss } = cookies.encode(US, 80, PEER, 40000, 7, 1460, start);
    expect(cookies.check(US, 80, PEER, 40000, 7, iss, start + COOKIE_MAX_AGE * COOKIE_PERIOD_MS - 1)).toEqual({ mss: 1460 });
    expect(cookies.check(US, 80, PEER, 40000, 7, iss, start + COOKIE_MAX_AGE * COOKIE_PERIOD_MS)).toBeUndefined();
    expect(cookies.check(US, 80, PEER, 40000, 7, iss, start - 1)).toBeUndefined();
    // 256 ticks later the 8-bit count has wrapped: the key-and-count hash still refuses it.
    expect(cookies.check(US, 80, PEER, 40000, 7, iss, start + 256 * COOKIE_PERIOD_MS)).toBeUndefined();
  });

  it('accepts no random guess out of 200,000 (seeded): a forgery needs ~2^22 tries per tick', () => {
    const rnd = seededRandom(4987);
    let accepted = 0;
    for (let i = 0; i < 200_000; i++) {
      const guess = Math.floor(rnd() * 2 ** 32) >>> 0;
      if (cookies.check(US, 80, PEER, 40000, 99, guess, T0)) accepted++;
    }
    expect(accepted).toBe(0);
  });
});

describe('SynCookies: key rotation', () => {
  it('keeps accepting cookies made before a rotation for as long as they were valid, then only new ones', () => {
    const cookies = new SynCookies(secret(3));
    const before = cookies.encode(US, 80, PEER, 40000, 1, 1460, T0).iss;
    cookies.rotate(T0 + 1000, secret(4));
    const after = cookies.encode(US, 80, PEER, 40000, 1, 1460, T0 + 1000).iss;
    expect(after).not.toBe(before);
    expect(cookies.check(US, 80, PEER, 40000, 1, before, T0 + 2000)).toEqual({ mss: 1460 });
    expect(cookies.check(US, 80, PEER, 40000, 1, after, T0 + 2000)).toEqual({ mss: 1460 });
    // Made with the new key only: an instance that never rotated refuses it.
    expect(new SynCookies(secret(3)).check(US, 80, PEER, 40000, 1, after, T0 + 2000)).toBeUndefined();
    // The old key is dropped once its cookies would have expired anyway.
    const later = T0 + 1000 + COOKIE_MAX_AGE * COOKIE_PERIOD_MS;
    const fresh = cookies.encode(US, 80, PEER, 40000, 1, 1460, later).iss;
    expect(cookies.check(US, 80, PEER, 40000, 1, fresh, later)).toEqual({ mss: 1460 });
  });

  it('refuses a secret shorter than two SipHash keys', () => {
    expect(() => new SynCookies(new Uint8Array(16))).toThrow(RangeError);
  });
});

describe('COOKIE_MSS_TABLE', () => {
  it("is Linux's msstab: four values fit the cookie's two MSS bits", () => {
    expect(COOKIE_MSS_TABLE).toEqual([536, 1300, 1440, 1460]);
  });
});

describe('cookie timestamps (Linux cookie_init_timestamp / cookie_timestamp_decode)', () => {
  it('carry every window scale 0..14 or "none", and SACK-permitted, in the low bits; never ahead of the clock, at most one step behind', () => {
    const rand = seededRandom(5);
    const clocks = [0, 1, 63, 64, 65, 0xffffffff, 0xffffffc0, ...Array.from({ length: 200 }, () => Math.floor(rand() * 2 ** 32))];
    for (const clock of clocks) {
      for (const wscale of [undefined, 0, 1, 7, 14]) {
        for (const sackOk of [false, true]) {
          const ts = cookieTimestamp(clock, wscale, sackOk);
          const behind = (clock - ts) >>> 0; // on the 32-bit circle
          expect(behind, `clock ${clock}`).toBeLessThan(2 ** COOKIE_TS_BITS);
          expect(decodeCookieTimestamp(ts), `clock ${clock}`).toEqual({ wscale, sackOk });
        }
      }
    }
  });

  it('a shift above 14 is carried as 14 (RFC 7323 §2.3)', () => {
    expect(decodeCookieTimestamp(cookieTimestamp(1000, 15, false)).wscale).toBe(14);
  });
});
