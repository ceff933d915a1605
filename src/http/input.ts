/**
 * What the HTTP/1.1 request and response parsers share: a queue of received chunks read
 * line by line or in body-sized pieces, and the RFC 9112 rules for lines, field lines and
 * chunk sizes. Sans-I/O.
 *
 * Body pieces are `subarray` views of the fed chunks, never copies. Only a line that
 * straddles two chunks is copied (into a small bounded `carry` buffer), so feeding one
 * byte at a time costs O(n), not O(n²).
 */

const CR = 0x0d;
const LF = 0x0a;
export const TOO_LONG = Symbol('line too long');

/** tchar (RFC 9110 §5.6.2): what a method or field name is made of. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value may hold VCHAR, obs-text, SP and HTAB: any other control is an error (RFC 9110 §5.5). */
export const BAD_VALUE_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/;
/** After the chunk size: optional BWS, then `;ext...` with no controls except HTAB (RFC 9112 §7.1.1). */
const CHUNK_EXT = /^[ \t]*(;[\t\x20-\x7e\x80-\xff]*)?$/;
const HEX_DIGITS = /^[0-9A-Fa-f]+/;

/** One field line: name lower-cased (field names are case-insensitive, RFC 9110 §5.1), value trimmed. */
export type Field = readonly [name: string, value: string];

export class InputQueue {
  // Input not yet consumed: a queue of chunks, the first one consumed up to `offset`.
  private chunks: Buffer[] = [];
  private offset = 0;
  private queued = 0;
  // The start of a line whose end has not arrived yet (copied; bounded by the line limit).
  private carry: Buffer = Buffer.allocUnsafe(256);
  private carryLen = 0;

  /** Queue bytes. The chunk must not be modified afterwards: body pieces are views of it. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.chunks.push(buf);
    this.queued += buf.length;
  }

  /** Bytes queued and not yet returned (a partial line included). */
  get size(): number {
    return this.queued + this.carryLen;
  }

  clear(): void {
    this.chunks = [];
    this.offset = 0;
    this.queued = 0;
    this.carryLen = 0;
  }

  /**
   * The next line including its LF, decoded as latin1 (one character per byte), or null if its
   * end has not arrived, or TOO_LONG if it already exceeds `limit` bytes. A line spanning chunks
   * is assembled in `carry` first. (A string, not a Buffer view: the parsers want text, and a view
   * per line cost an object and a native call more than decoding straight from the chunk.)
   */
  readLine(limit: number): string | null | typeof TOO_LONG {
    while (this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      const start = this.offset;
      // Only the bytes the limit leaves room for are searched: a LF past them is too late anyway.
      const room = Math.max(0, limit - this.carryLen);
      const scanEnd = Math.min(chunk.length, start + room);
      const lf = indexOfLf(chunk, start, scanEnd);
      if (lf < 0 && scanEnd < chunk.length) return TOO_LONG;
      const end = lf < 0 ? chunk.length : lf + 1;
      this.consume(end - start);
      if (lf >= 0 && this.carryLen === 0) return chunk.toString('latin1', start, end);
      this.appendCarry(chunk, start, end);
      if (lf >= 0) {
        const line = this.carry.toString('latin1', 0, this.carryLen);
        this.carryLen = 0;
        return line;
      }
    }
    return null;
  }

  /** Up to `max` bytes as a view of the first queued chunk, or null if none is queued. */
  take(max: number): Buffer | null {
    if (this.chunks.length === 0) return null;
    const chunk = this.chunks[0]!;
    const n = Math.min(max, chunk.length - this.offset);
    const data = chunk.subarray(this.offset, this.offset + n);
    this.consume(n);
    return data;
  }

  private consume(n: number): void {
    this.offset += n;
    this.queued -= n;
    if (this.offset === this.chunks[0]!.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }

  private appendCarry(src: Buffer, start: number, end: number): void {
    const need = this.carryLen + (end - start);
    if (need > this.carry.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, this.carry.length * 2));
      this.carry.copy(bigger, 0, 0, this.carryLen);
      this.carry = bigger;
    }
    src.copy(this.carry, this.carryLen, start, end);
    this.carryLen = need;
  }
}

/**
 * chunk-size [ chunk-ext ] (RFC 9112 §7.1), the line without its CRLF: the size, or why
 * the line is refused. Extensions are ignored (§7.1.1) but must be well-formed enough.
 */
export function parseChunkSize(text: string): number | 'bad-chunk-size' | 'bad-chunk-extension' | 'chunk-size-overflow' {
  const digits = HEX_DIGITS.exec(text)?.[0];
  if (digits === undefined) return 'bad-chunk-size';
  if (!CHUNK_EXT.test(text.slice(digits.length))) return 'bad-chunk-extension';
  // 13 hex digits = 52 bits: exact in a double. More would silently round (§7.1: overflow).
  const significant = digits.replace(/^0+/, '');
  if (significant.length > 13) return 'chunk-size-overflow';
  return significant === '' ? 0 : parseInt(significant, 16);
}

/** Lines end in CRLF; a CR anywhere else, or a LF without CR, is refused (RFC 9112 §2.2). */
export function checkLineEnding(line: string): string | null {
  const n = line.length;
  if (n < 2 || line.charCodeAt(n - 2) !== CR) return 'bare-lf';
  if (line.indexOf('\r') !== n - 2) return 'bare-cr';
  return null;
}

/**
 * The first LF in `buf[from, to)`, or -1. A loop rather than Buffer's indexOf: request and field
 * lines are tens of bytes, and scanning them here costs less than the call into native code.
 */
function indexOfLf(buf: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] === LF) return i;
  return -1;
}

/** field-line = field-name ":" OWS field-value OWS (RFC 9112 §5). Returns the field or an error reason. */
export function parseFieldLine(line: string): Field | string {
  // RFC 9112 §5.2: obs-fold (a line starting with whitespace) is rejected with 400.
  if (line.charCodeAt(0) === 0x20 || line.charCodeAt(0) === 0x09) return 'obs-fold';
  const colon = line.indexOf(':');
  if (colon < 0) return 'missing-colon';
  if (colon === 0) return 'empty-field-name';
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) {
    // RFC 9112 §5.1: whitespace between name and colon MUST be rejected with 400.
    const last = name.charCodeAt(name.length - 1);
    return last === 0x20 || last === 0x09 ? 'space-before-colon' : 'bad-field-name';
  }
  const value = trimOws(line.slice(colon + 1));
  if (BAD_VALUE_CHAR.test(value)) return 'bad-field-value';
  return [name.toLowerCase(), value];
}

export function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return s.slice(a, b);
}

/**
 * Elements of a comma-separated list (RFC 9110 §5.6.1), trimmed. Empty elements are
 * dropped, except for Content-Length where an empty element makes the value invalid.
 */
export function splitList(value: string, keepEmpty: boolean): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = trimOws(part);
    if (t !== '' || keepEmpty) out.push(t);
  }
  return out;
}


/**
 * The Content-Length values of a message (list elements of every Content-Length field) as one
 * decimal string without leading zeros. RFC 9110 §8.6: a list of identical values may be
 * accepted; anything else is an error.
 */
export function contentLengthDigits(values: string[]): string | 'bad-content-length' | 'conflicting-content-length' {
  const canonical = new Set<string>();
  for (const v of values) {
    if (!/^\d+$/.test(v)) return 'bad-content-length';
    canonical.add(v.replace(/^0+(?=\d)/, ''));
  }
  if (canonical.size !== 1) return 'conflicting-content-length';
  return canonical.values().next().value as string;
}
