/**
 * SYN cookies (RFC 4987 §3.6), in Linux's encoding (net/ipv4/syncookies.c).
 *
 * When a listener's SYN queue is full, the SYN-ACK's ISN is made to carry everything the
 * handshake needs, and nothing is stored. The client's ACK returns it as SEG.ACK - 1; a valid
 * cookie proves the client saw our SYN-ACK (it is not a spoofed source) and tells us the MSS.
 *
 *     cookie = H(key0; 4-tuple)  +  client ISN  +  count · 2^24
 *              + ((H(key1; 4-tuple, count) + mssIndex)  mod 2^24)
 *
 * `count` is a coarse clock (one tick per minute, as Linux's tcp_cookie_time()); a cookie is
 * accepted while the clock has moved on by less than COOKIE_MAX_AGE ticks. The 8 high bits
 * carry count mod 256; the 24 low bits a keyed hash plus the index of the MSS in a table of 4
 * (Linux's msstab), so a forged cookie passes with odds of 4 in 2^24 per count value tried.
 * H is SipHash-2-4 (as in isn.ts, and as Linux); the keys are drawn once and can be rotated.
 *
 * What does not fit in the ISN: the peer's window scale and SACK-permitted. As Linux does
 * (cookie_init_timestamp / cookie_timestamp_decode), they travel in the low COOKIE_TS_BITS bits
 * of our SYN-ACK's TSval when the SYN carried timestamps, and come back in the ACK's TSecr
 * (`cookieTimestamp`, `decodeCookieTimestamp`). Without timestamps a cookie SYN-ACK offers no
 * window scale and no SACK, so such a connection's window is at most 64 KiB (RFC 7323 §2.2:
 * scaling needs the option in both SYNs) — Linux behaves the same.
 *
 * Sans-I/O: `now` (ms) comes from the caller; the keys are the only randomness.
 */
import { randomBytes } from 'node:crypto';
import { SIPHASH_KEY_LEN, siphash24 } from './isn.js';

/** MSS values a cookie can carry (Linux's msstab): index 0..3 in the cookie's low bits. */
export const COOKIE_MSS_TABLE: readonly number[] = [536, 1300, 1440, 1460];
/** One tick of the cookie clock, ms (Linux: tcp_cookie_time() counts minutes). */
export const COOKIE_PERIOD_MS = 60_000;
/** A cookie is valid while the clock moved on by fewer ticks than this (Linux MAX_SYNCOOKIE_AGE). */
export const COOKIE_MAX_AGE = 2;

/** Low bits of a cookie SYN-ACK's TSval that carry the SYN's options (Linux's TSBITS). */
export const COOKIE_TS_BITS = 6;
/** In those bits: the peer's window scale, 0..14, or 15 for "no window scaling" (TS_OPT_WSCALE_MASK). */
const TS_WSCALE_MASK = 0xf;
/** ...and SACK-permitted (TS_OPT_SACK). Bit 5 is Linux's ECN, which this stack does not do. */
const TS_SACK = 0x10;

const COOKIE_BITS = 24;
const COOKIE_MASK = (1 << COOKIE_BITS) - 1;

/** What a valid cookie tells about the SYN it answered. */
export interface CookieSyn {
  /** The MSS to send with: the table entry chosen when the cookie was made. */
  mss: number;
}

/** Two SipHash keys: one for the count-independent part, one for the part hashed with the count. */
interface Keys {
  k0: Uint8Array;
  k1: Uint8Array;
}

export class SynCookies {
  private keys: Keys;
  /** The keys before the last rotation, still accepted for cookies made before it. */
  private previous: { keys: Keys; until: number } | undefined;
  /** Scratch message: 4-tuple (12 bytes) + count (4 bytes). */
  private readonly msg = new Uint8Array(16);

  /** @param secret 32 bytes (two 16-byte keys); default: fresh from the OS CSPRNG. */
  constructor(secret: Uint8Array = randomBytes(2 * SIPHASH_KEY_LEN)) {
    this.keys = splitKeys(secret);
  }

  /**
   * New keys from now on. Cookies made with the old keys stay valid as long as they would
   * have anyway (COOKIE_MAX_AGE ticks), so rotating never breaks a handshake in progress.
   */
  rotate(now: number, secret: Uint8Array = randomBytes(2 * SIPHASH_KEY_LEN)): void {
    this.previous = { keys: this.keys, until: now + COOKIE_MAX_AGE * COOKIE_PERIOD_MS };
    this.keys = splitKeys(secret);
  }

  /**
   * The ISN for a cookie SYN-ACK answering a SYN with sequence number `clientIsn` and MSS
   * option `peerMss` (undefined: none, so 536, RFC 9293 §3.7.1). Returns it with the MSS the
   * cookie carries: the largest table entry not above the peer's.
   */
  encode(
    localAddr: number,
    localPort: number,
    remoteAddr: number,
    remotePort: number,
    clientIsn: number,
    peerMss: number | undefined,
    now: number,
  ): { iss: number; mss: number } {
    const mssIndex = mssIndexFor(peerMss ?? 536);
    const count = tick(now);
    this.setTuple(localAddr, localPort, remoteAddr, remotePort);
    const h0 = this.hash(this.keys.k0, 0);
    const h1 = this.hash(this.keys.k1, count);
    const iss = (h0 + clientIsn + ((count << COOKIE_BITS) >>> 0) + ((h1 + mssIndex) & COOKIE_MASK)) >>> 0;
    return { iss, mss: COOKIE_MSS_TABLE[mssIndex]! };
  }

  /**
   * Check the ACK of a cookie SYN-ACK: `cookie` is SEG.ACK - 1, `clientIsn` is SEG.SEQ - 1.
   * Returns what the cookie carries, or undefined when it is forged, for another 4-tuple,
   * or too old.
   */
  check(
    localAddr: number,
    localPort: number,
    remoteAddr: number,
    remotePort: number,
    clientIsn: number,
    cookie: number,
    now: number,
  ): CookieSyn | undefined {
    this.setTuple(localAddr, localPort, remoteAddr, remotePort);
    const found = this.checkWith(this.keys, clientIsn, cookie, now);
    if (found !== undefined || this.previous === undefined) return found;
    if (now >= this.previous.until) {
      this.previous = undefined;
      return undefined;
    }
    return this.checkWith(this.previous.keys, clientIsn, cookie, now);
  }

  private checkWith(keys: Keys, clientIsn: number, cookie: number, now: number): CookieSyn | undefined {
    const count = tick(now);
    // What is left once the count-independent hash and the client's ISN are taken away:
    // count · 2^24 + ((H1 + mssIndex) mod 2^24), all mod 2^32.
    const rest = (cookie - this.hash(keys.k0, 0) - clientIsn) >>> 0;
    const age = (count - (rest >>> COOKIE_BITS)) & 0xff;
    if (age >= COOKIE_MAX_AGE) return undefined;
    const mssIndex = (rest - this.hash(keys.k1, count - age)) & COOKIE_MASK;
    if (mssIndex >= COOKIE_MSS_TABLE.length) return undefined;
    return { mss: COOKIE_MSS_TABLE[mssIndex]! };
  }

  private setTuple(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): void {
    const m = this.msg;
    m[0] = remoteAddr >>> 24; m[1] = remoteAddr >>> 16; m[2] = remoteAddr >>> 8; m[3] = remoteAddr;
    m[4] = localAddr >>> 24; m[5] = localAddr >>> 16; m[6] = localAddr >>> 8; m[7] = localAddr;
    m[8] = remotePort >>> 8; m[9] = remotePort; m[10] = localPort >>> 8; m[11] = localPort;
  }

  /** SipHash of the 4-tuple set by setTuple and `count`; the low 32 bits. */
  private hash(key: Uint8Array, count: number): number {
    const m = this.msg;
    m[12] = count >>> 24; m[13] = count >>> 16; m[14] = count >>> 8; m[15] = count;
    return siphash24(key, m).lo;
  }
}

/**
 * The timestamp clock value (before the connection's offset) for a cookie SYN-ACK sent when the
 * clock reads `clock`: its low COOKIE_TS_BITS bits say the SYN's window scale (`undefined`: it
 * offered none) and SACK-permitted, the rest is the clock, moved back by one step if need be so
 * that it is never ahead of the clock (Linux's cookie_init_timestamp). The connection's later
 * TSvals are the clock itself, so they never go backwards from it.
 */
export function cookieTimestamp(clock: number, wscale: number | undefined, sackOk: boolean): number {
  const options = (wscale === undefined ? TS_WSCALE_MASK : Math.min(wscale, 14)) | (sackOk ? TS_SACK : 0);
  const now = clock >>> 0;
  let ts = ((now >>> COOKIE_TS_BITS) << COOKIE_TS_BITS) >>> 0;
  ts = (ts | options) >>> 0;
  if (ts > now) ts = (ts - (1 << COOKIE_TS_BITS)) >>> 0;
  return ts;
}

/** What the ACK's TSecr (less the connection's offset) says about the SYN (Linux's cookie_timestamp_decode). */
export function decodeCookieTimestamp(echo: number): { wscale: number | undefined; sackOk: boolean } {
  const w = echo & TS_WSCALE_MASK;
  return { wscale: w === TS_WSCALE_MASK ? undefined : Math.min(w, 14), sackOk: (echo & TS_SACK) !== 0 };
}

/** The cookie clock: whole COOKIE_PERIOD_MS since time 0, as a uint32. */
function tick(now: number): number {
  return Math.floor(now / COOKIE_PERIOD_MS) >>> 0;
}

/** Largest table entry not above `mss` (index 0, 536, when even that is above it), as Linux. */
function mssIndexFor(mss: number): number {
  for (let i = COOKIE_MSS_TABLE.length - 1; i > 0; i--) if (mss >= COOKIE_MSS_TABLE[i]!) return i;
  return 0;
}

function splitKeys(secret: Uint8Array): Keys {
  if (secret.length < 2 * SIPHASH_KEY_LEN) throw new RangeError(`SynCookies: secret needs ${2 * SIPHASH_KEY_LEN} bytes`);
  return { k0: secret.slice(0, SIPHASH_KEY_LEN), k1: secret.slice(SIPHASH_KEY_LEN, 2 * SIPHASH_KEY_LEN) };
}
