/**
 * Initial sequence numbers (RFC 6528).
 *
 *     ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
 *
 * M is a timer that ticks every 4 µs (RFC 9293 §3.4.1), so successive incarnations
 * of the same 4-tuple get increasing ISNs and old duplicates stay out of the new
 * window. F is a keyed hash of the 4-tuple: an off-path attacker who sees our ISN
 * on one connection learns nothing about the ISN of another, which defeats blind
 * spoofing and injection (the attack RFC 6528 §1 describes). Stacks that used a
 * plain counter or time*rand (lwIP, picoTCP) are guessable; Linux uses SipHash of
 * the 4-tuple plus a clock, and so do we.
 *
 * Sans-I/O: the secret is the one piece of randomness and is drawn once, at
 * construction; `now` comes from the caller. Tests pass a fixed secret.
 */
import { randomBytes } from 'node:crypto';

/** Length of a SipHash key in bytes. */
export const SIPHASH_KEY_LEN = 16;

// ---------------------------------------------------------------------------
// SipHash-2-4 (Aumasson & Bernstein, 2012): a fast keyed hash with a 64-bit output.
// JavaScript has no fast 64-bit integers (BigInt allocates), so each 64-bit word
// is kept as two uint32 halves in a Uint32Array: word w at [2w] = high, [2w+1] = low.
// Assigning into a Uint32Array truncates modulo 2^32, which is what the carries need.
// ---------------------------------------------------------------------------

const V0 = 0, V1 = 1, V2 = 2, V3 = 3;

/** v[a] += v[b] (mod 2^64). */
function add(v: Uint32Array, a: number, b: number): void {
  const lo = v[2 * a + 1]! + v[2 * b + 1]!;
  v[2 * a] = v[2 * a]! + v[2 * b]! + (lo > 0xffffffff ? 1 : 0);
  v[2 * a + 1] = lo;
}

/** v[a] ^= v[b]. */
function xor(v: Uint32Array, a: number, b: number): void {
  v[2 * a] = v[2 * a]! ^ v[2 * b]!;
  v[2 * a + 1] = v[2 * a + 1]! ^ v[2 * b + 1]!;
}

/** v[a] = rotate v[a] left by n bits, 0 < n < 64. */
function rotl(v: Uint32Array, a: number, n: number): void {
  // Plain variables rather than array destructuring ([hi, lo] = [lo, hi]): this runs 28 times per
  // hash, two hashes per new connection, and V8 does not always optimise the temporary arrays away.
  let hi = v[2 * a]!, lo = v[2 * a + 1]!;
  if (n >= 32) {
    const t = hi; // rotating by 32 swaps the halves
    hi = lo;
    lo = t;
    n -= 32;
  }
  if (n > 0) {
    const h = (hi << n) | (lo >>> (32 - n));
    lo = (lo << n) | (hi >>> (32 - n));
    hi = h;
  }
  v[2 * a] = hi;
  v[2 * a + 1] = lo;
}

/** One SipRound: the ARX network from the SipHash paper, §2. */
function sipRound(v: Uint32Array): void {
  add(v, V0, V1); rotl(v, V1, 13); xor(v, V1, V0); rotl(v, V0, 32);
  add(v, V2, V3); rotl(v, V3, 16); xor(v, V3, V2);
  add(v, V0, V3); rotl(v, V3, 21); xor(v, V3, V0);
  add(v, V2, V1); rotl(v, V1, 17); xor(v, V1, V2); rotl(v, V2, 32);
}

/** Little-endian uint32 at buf[off..off+4), with bytes past `end` read as 0. */
function readLe32(buf: Uint8Array, off: number, end: number): number {
  let x = 0;
  for (let i = 3; i >= 0; i--) x = (x << 8) | (off + i < end ? buf[off + i]! : 0);
  return x >>> 0;
}

/** Scratch: v0..v3 (8 halves) + message word m (2 halves), reused across calls. */
const state = new Uint32Array(10);
const M = 4;

/** v3 ^= m; c rounds; v0 ^= m — how SipHash absorbs one 64-bit message word. */
function absorb(v: Uint32Array, hi: number, lo: number, rounds: number): void {
  v[2 * M] = hi;
  v[2 * M + 1] = lo;
  xor(v, V3, M);
  for (let r = 0; r < rounds; r++) sipRound(v);
  xor(v, V0, M);
}

/**
 * SipHash-2-4 of `msg` under a 16-byte `key`. Returns the 64-bit result as two
 * uint32 halves (the reference implementation's u64 = hi * 2^32 + lo).
 */
export function siphash24(key: Uint8Array, msg: Uint8Array): { hi: number; lo: number } {
  if (key.length !== SIPHASH_KEY_LEN) throw new RangeError('siphash24: key must be 16 bytes');
  const v = state;
  const k0lo = readLe32(key, 0, 16), k0hi = readLe32(key, 4, 16);
  const k1lo = readLe32(key, 8, 16), k1hi = readLe32(key, 12, 16);
  // Initial state: the key XOR the ASCII of "somepseudorandomlygeneratedbytes".
  v[0] = k0hi ^ 0x736f6d65; v[1] = k0lo ^ 0x70736575;
  v[2] = k1hi ^ 0x646f7261; v[3] = k1lo ^ 0x6e646f6d;
  v[4] = k0hi ^ 0x6c796765; v[5] = k0lo ^ 0x6e657261;
  v[6] = k1hi ^ 0x74656462; v[7] = k1lo ^ 0x79746573;

  const len = msg.length;
  const fullEnd = len - (len % 8);
  for (let off = 0; off < fullEnd; off += 8) {
    absorb(v, readLe32(msg, off + 4, len), readLe32(msg, off, len), 2);
  }
  // Last word: the 0..7 leftover bytes, and the message length (mod 256) in the top byte.
  const lastLo = readLe32(msg, fullEnd, len);
  const lastHi = (readLe32(msg, fullEnd + 4, len) | ((len & 0xff) << 24)) >>> 0;
  absorb(v, lastHi, lastLo, 2);

  // Finalisation: v2 ^= 0xff, 4 rounds, fold the state.
  v[2 * V2 + 1] = v[2 * V2 + 1]! ^ 0xff;
  for (let r = 0; r < 4; r++) sipRound(v);
  return {
    hi: (v[0]! ^ v[2]! ^ v[4]! ^ v[6]!) >>> 0,
    lo: (v[1]! ^ v[3]! ^ v[5]! ^ v[7]!) >>> 0,
  };
}

// ---------------------------------------------------------------------------

export class IsnGenerator {
  readonly #key = new Uint8Array(SIPHASH_KEY_LEN);
  /** A second key, for timestamp offsets: a TSval must tell nothing about our ISNs and vice versa. */
  readonly #tsKey = new Uint8Array(SIPHASH_KEY_LEN);
  /** The 4-tuple as hashed: local addr, local port, remote addr, remote port, network byte order. */
  readonly #tuple = new Uint8Array(12);

  /**
   * @param secret 16 or more random bytes. Bytes beyond 16 are XOR-folded into the
   *   16-byte SipHash key, so no entropy is thrown away. Default: 16 fresh bytes from
   *   the OS CSPRNG. (RFC 6528 §3 suggests changing the key now and then; a new
   *   generator per process start does that.)
   */
  constructor(secret: Uint8Array = randomBytes(SIPHASH_KEY_LEN)) {
    if (secret.length < SIPHASH_KEY_LEN) {
      throw new RangeError(`IsnGenerator: secret needs at least ${SIPHASH_KEY_LEN} bytes`);
    }
    for (let i = 0; i < secret.length; i++) this.#key[i % SIPHASH_KEY_LEN] ^= secret[i]!;
    // The timestamp key: SipHash (a PRF) of two fixed labels under the ISN key, 2 x 64 bits.
    const label = new TextEncoder().encode('tcp-ts-offset-0');
    for (let half = 0; half < 2; half++) {
      label[label.length - 1] = half;
      const { hi, lo } = siphash24(this.#key, label);
      for (let b = 0; b < 4; b++) {
        this.#tsKey[half * 8 + b] = hi >>> (24 - 8 * b);
        this.#tsKey[half * 8 + 4 + b] = lo >>> (24 - 8 * b);
      }
    }
  }

  /**
   * The offset added to this connection's timestamp clock (RFC 7323 §5.4, §7.1): a keyed hash of
   * the 4-tuple, like F in the ISN, so TSvals leak no uptime and differ between connections, while
   * a new incarnation of the same 4-tuple continues the same clock (which RFC 6191 relies on).
   */
  tsOffset(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): number {
    return siphash24(this.#tsKey, this.#packTuple(localAddr, localPort, remoteAddr, remotePort)).lo;
  }

  #packTuple(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): Uint8Array {
    const t = this.#tuple;
    t[0] = localAddr >>> 24; t[1] = localAddr >>> 16; t[2] = localAddr >>> 8; t[3] = localAddr;
    t[4] = localPort >>> 8; t[5] = localPort;
    t[6] = remoteAddr >>> 24; t[7] = remoteAddr >>> 16; t[8] = remoteAddr >>> 8; t[9] = remoteAddr;
    t[10] = remotePort >>> 8; t[11] = remotePort;
    return t;
  }

  /**
   * A secret for the connection table's hash (conntable.ts), derived like the timestamp key: a
   * peer that cannot predict it cannot choose tuples that pile up in one run of slots.
   */
  tableSecret(): number {
    return siphash24(this.#key, new TextEncoder().encode('conn-table-hash')).lo;
  }

  /** ISN for a new connection on this 4-tuple at time `now` (ms). */
  isn(localAddr: number, localPort: number, remoteAddr: number, remotePort: number, now: number): number {
    const f = siphash24(this.#key, this.#packTuple(localAddr, localPort, remoteAddr, remotePort)).lo;
    // M: one tick per 4 µs = 250 ticks per ms (RFC 9293 §3.4.1), modulo 2^32.
    const m = Math.floor(now * 250);
    return (m + f) >>> 0; // >>> 0 reduces modulo 2^32 (exact: the sum is far below 2^53)
  }
}
