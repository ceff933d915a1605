/**
 * An HTTP/1.1 response parser (RFC 9112), sans-I/O, for the client side (`netstack get`):
 * bytes in, events out. The body's length follows RFC 9112 section 6.3: no body for HEAD,
 * 1xx, 204 and 304; chunked transfer coding; Content-Length; otherwise until the
 * connection closes. Bad input is an 'error' event with one sentence, never a throw; the
 * head is bounded (64 KiB, 100 fields) and the body is passed through, never buffered.
 */
export interface ResponseHead {
  version: string;
  status: number;
  reason: string;
  /** Field names lowercased, in arrival order. */
  headers: Array<[name: string, value: string]>;
}

export type ResponseEvent =
  | { kind: 'head'; head: ResponseHead }
  | { kind: 'body'; data: Uint8Array }
  | { kind: 'end'; bodyBytes: number }
  | { kind: 'error'; message: string };

const MAX_HEAD = 64 * 1024;
const MAX_FIELDS = 100;
/** A chunk-size line with extensions longer than this is refused (they are not used here). */
const MAX_CHUNK_LINE = 4096;

type Mode = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'close' | 'done' | 'failed';

export class ResponseParser {
  private mode: Mode = 'head';
  private buf: Uint8Array = new Uint8Array(0);
  private remaining = 0;
  private bodyBytes = 0;

  constructor(private readonly opts: { method?: string } = {}) {}

  /** Bytes from the connection. */
  push(chunk: Uint8Array): ResponseEvent[] {
    const out: ResponseEvent[] = [];
    if (this.mode === 'done' || this.mode === 'failed') return out;
    this.buf = concat(this.buf, chunk);
    // Each pass consumes input or changes mode; bounded by the bytes held.
    for (let guard = 0; guard <= this.buf.length + 8 && this.buf.length > 0; guard++) {
      if (!this.step(out)) break;
    }
    return out;
  }

  /** The connection ended (the peer's FIN). */
  finish(): ResponseEvent[] {
    if (this.mode === 'close') {
      this.mode = 'done';
      return [{ kind: 'end', bodyBytes: this.bodyBytes }];
    }
    if (this.mode === 'done' || this.mode === 'failed') return [];
    const where = this.mode === 'head' ? 'before the response head was complete' : `after ${this.bodyBytes} bytes of the body`;
    this.mode = 'failed';
    return [{ kind: 'error', message: `the server closed the connection ${where}` }];
  }

  get done(): boolean {
    return this.mode === 'done';
  }

  private fail(out: ResponseEvent[], message: string): false {
    this.mode = 'failed';
    this.buf = new Uint8Array(0);
    out.push({ kind: 'error', message });
    return false;
  }

  /** One step of work; false when more input is needed. */
  private step(out: ResponseEvent[]): boolean {
    switch (this.mode) {
      case 'head': {
        const end = indexOfCrlfCrlf(this.buf);
        if (end < 0) {
          if (this.buf.length > MAX_HEAD) return this.fail(out, `the response head is larger than ${MAX_HEAD} bytes`);
          return false;
        }
        if (end > MAX_HEAD) return this.fail(out, `the response head is larger than ${MAX_HEAD} bytes`);
        const text = Buffer.from(this.buf.subarray(0, end)).toString('latin1');
        this.buf = this.buf.slice(end + 4);
        return this.onHead(text, out);
      }
      case 'length': {
        const n = Math.min(this.remaining, this.buf.length);
        this.emitBody(out, this.buf.subarray(0, n));
        this.buf = this.buf.slice(n);
        this.remaining -= n;
        if (this.remaining === 0) this.end(out);
        return true;
      }
      case 'close':
        this.emitBody(out, this.buf);
        this.buf = new Uint8Array(0);
        return false;
      case 'chunk-size': {
        const eol = indexOfCrlf(this.buf);
        if (eol < 0) return this.buf.length > MAX_CHUNK_LINE ? this.fail(out, 'a chunk-size line is too long') : false;
        const line = Buffer.from(this.buf.subarray(0, eol)).toString('latin1');
        this.buf = this.buf.slice(eol + 2);
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
        if (!m) return this.fail(out, `bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
        this.remaining = parseInt(m[1]!, 16);
        this.mode = this.remaining === 0 ? 'trailers' : 'chunk-data';
        return true;
      }
      case 'chunk-data': {
        const n = Math.min(this.remaining, this.buf.length);
        this.emitBody(out, this.buf.subarray(0, n));
        this.buf = this.buf.slice(n);
        this.remaining -= n;
        if (this.remaining === 0) this.mode = 'chunk-crlf';
        return true;
      }
      case 'chunk-crlf':
        if (this.buf.length < 2) return false;
        if (this.buf[0] !== 13 || this.buf[1] !== 10) return this.fail(out, 'a chunk is not followed by CRLF');
        this.buf = this.buf.slice(2);
        this.mode = 'chunk-size';
        return true;
      case 'trailers': {
        // RFC 9112 section 7.1.2: trailer fields end with an empty line; we read and drop them.
        const eol = indexOfCrlf(this.buf);
        if (eol < 0) return this.buf.length > MAX_HEAD ? this.fail(out, 'the trailer section is too large') : false;
        this.buf = this.buf.slice(eol + 2);
        if (eol === 0) this.end(out);
        return true;
      }
      default:
        return false;
    }
  }

  private onHead(text: string, out: ResponseEvent[]): boolean {
    const lines = text.split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]!);
    if (!m) return this.fail(out, `not an HTTP response: ${JSON.stringify(lines[0]!.slice(0, 60))}`);
    const headers: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      if (c <= 0 || /[\s]/.test(line.slice(0, c))) return this.fail(out, `bad header line ${JSON.stringify(line.slice(0, 60))}`);
      headers.push([line.slice(0, c).toLowerCase(), line.slice(c + 1).trim()]);
      if (headers.length > MAX_FIELDS) return this.fail(out, `more than ${MAX_FIELDS} header fields`);
    }
    const head: ResponseHead = { version: m[1]!, status: Number(m[2]), reason: m[3] ?? '', headers };
    // 1xx interim responses (RFC 9110 section 15.2): skip, the real one follows.
    if (head.status >= 100 && head.status < 200) return true;
    const get = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
    const te = get('transfer-encoding').join(',').toLowerCase();
    const cl = get('content-length');
    if (this.opts.method === 'HEAD' || head.status === 204 || head.status === 304) {
      out.push({ kind: 'head', head });
      this.end(out);
    } else if (te !== '') {
      // RFC 9112 section 6.3 rule 4: chunked must be the final coding, else read until close.
      out.push({ kind: 'head', head });
      this.mode = /(^|,)\s*chunked\s*$/.test(te) ? 'chunk-size' : 'close';
    } else if (cl.length > 0) {
      // Rule 5: differing values (or lists of them) make the framing unknowable.
      const values = new Set(cl.flatMap((v) => v.split(',').map((x) => x.trim())));
      const v = [...values][0]!;
      if (values.size !== 1 || !/^\d{1,15}$/.test(v)) return this.fail(out, `bad Content-Length ${JSON.stringify(cl.join(', '))}`);
      out.push({ kind: 'head', head });
      this.remaining = Number(v);
      if (this.remaining === 0) this.end(out);
      else this.mode = 'length';
    } else {
      out.push({ kind: 'head', head });
      this.mode = 'close';
    }
    return true;
  }

  private emitBody(out: ResponseEvent[], data: Uint8Array): void {
    if (data.length === 0) return;
    this.bodyBytes += data.length;
    out.push({ kind: 'body', data: data.slice() });
  }

  private end(out: ResponseEvent[]): void {
    this.mode = 'done';
    out.push({ kind: 'end', bodyBytes: this.bodyBytes });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 1 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10) return i;
  return -1;
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  return -1;
}
