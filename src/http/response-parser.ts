/**
 * Incremental HTTP/1.1 response parser (RFC 9112), sans-I/O: what a proxy reads from an
 * upstream server. Fed chunks as they arrive (`feed`), told when the server closed its side
 * (`end`), and pulled for events (`next`), like the request parser beside it:
 *
 *   informational (1xx, zero or more) → head → body* → end        or a single error
 *
 * One parser reads one response (it is told the request's method, since a response to HEAD
 * has no body). Bytes left over after `end` are not a next response: a server that sends
 * more than it framed cannot be trusted with another request on that connection (`extra`).
 *
 * Framing (RFC 9112 §6.3), in order: a response to HEAD, a 1xx, 204 or 304 has no body;
 * Transfer-Encoding `chunked` → chunked; Content-Length → that many bytes; otherwise the
 * body runs until the server closes. Strict where leniency lets a response be read two ways
 * (response splitting / smuggling through a proxy): Content-Length together with
 * Transfer-Encoding, conflicting Content-Lengths, a coding other than exactly `chunked`
 * (nginx refuses those too), Transfer-Encoding in HTTP/1.0, obs-fold, bare CR or LF,
 * whitespace before a colon, a chunk without its CRLF: each is an `error` (→ 502).
 */
import type { Field } from './input.js';
import { InputQueue, TOO_LONG, checkLineEnding, contentLengthDigits, parseChunkSize, parseFieldLine, splitList } from './input.js';

export interface ResponseLimits {
  /** Status line and fields together; larger → error (nginx: "upstream sent too big header"). */
  maxHeaderBytes: number;
  maxHeaderCount: number;
  maxChunkLineBytes: number;
  /** Interim (1xx) responses before the final one. */
  maxInformational: number;
}

export const DEFAULT_RESPONSE_LIMITS: Readonly<ResponseLimits> = {
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxChunkLineBytes: 4 * 1024,
  maxInformational: 8,
};

export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  version: '1.0' | '1.1';
  status: number;
  reason: string;
  /** Every field line in arrival order (repeats kept: Set-Cookie). */
  fields: Field[];
  /** Fields by lower-case name; repeats joined with ", ". */
  headers: Map<string, string>;
  framing: BodyFraming;
  /** Body length for 'length' framing. */
  contentLength: number | null;
  /** The server lets the connection carry another request after this response (RFC 9112 §9.3). */
  keepAlive: boolean;
}

export type ResponseEvent =
  | { type: 'informational'; status: number; fields: Field[] }
  | { type: 'head'; head: ResponseHead }
  | { type: 'body'; data: Uint8Array }
  | { type: 'end'; trailers: Field[] }
  | { type: 'error'; reason: string };

type State = 'status-line' | 'fields' | 'length-body' | 'chunk-size' | 'chunk-data' | 'chunk-data-crlf' | 'trailers' | 'close-body' | 'done' | 'failed';

const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;

export class ResponseParser {
  private readonly limits: ResponseLimits;
  private readonly input = new InputQueue();
  private state: State = 'status-line';
  private eof = false;
  private version: '1.0' | '1.1' = '1.1';
  private status = 0;
  private reason = '';
  private fields: Field[] = [];
  private headerBytes = 0;
  private informational = 0;
  private remaining = 0;
  /** Body bytes seen so far (for the caller's accounting). */
  bodyBytes = 0;

  constructor(
    private readonly requestMethod: string,
    limits: Partial<ResponseLimits> = {},
  ) {
    this.limits = { ...DEFAULT_RESPONSE_LIMITS, ...limits };
  }

  feed(chunk: Uint8Array): void {
    if (this.state === 'failed') return;
    this.input.push(chunk);
  }

  /** The server closed its side: no more input will come. */
  end(): void {
    this.eof = true;
  }

  /** Bytes fed and not yet turned into events. */
  get bufferedBytes(): number {
    return this.input.size;
  }

  /** The response is complete (its `end` event was returned). */
  get done(): boolean {
    return this.state === 'done';
  }

  /** Nothing of the response has arrived yet (a closed idle connection, not a broken response). */
  get untouched(): boolean {
    return this.state === 'status-line' && this.informational === 0 && this.headerBytes === 0 && this.input.size === 0;
  }

  /** After `end`: the server sent bytes beyond the response's framing. */
  get extra(): boolean {
    return this.state === 'done' && this.input.size > 0;
  }

  next(): ResponseEvent | null {
    // Every pass consumes input, changes state or returns: bounded by the input.
    for (;;) {
      switch (this.state) {
        case 'status-line': {
          const line = this.input.readLine(this.limits.maxHeaderBytes);
          if (line === null) return this.starved('closed-before-response');
          if (line === TOO_LONG) return this.fail('header-too-large');
          this.headerBytes = line.length;
          const ending = checkLineEnding(line);
          if (ending) return this.fail(ending);
          const m = STATUS_LINE.exec(line.slice(0, line.length - 2));
          if (!m) return this.fail('bad-status-line');
          if (m[1] !== '1' || (m[2] !== '0' && m[2] !== '1')) return this.fail('unsupported-version');
          this.version = m[2] === '0' ? '1.0' : '1.1';
          this.status = Number(m[3]);
          this.reason = m[4] ?? '';
          if (this.status < 100) return this.fail('bad-status-code');
          this.fields = [];
          this.state = 'fields';
          continue;
        }

        case 'fields': {
          const line = this.input.readLine(this.limits.maxHeaderBytes - this.headerBytes);
          if (line === null) return this.starved('truncated-header');
          if (line === TOO_LONG) return this.fail('header-too-large');
          this.headerBytes += line.length;
          const ending = checkLineEnding(line);
          if (ending) return this.fail(ending);
          if (line.length === 2) {
            if (this.status < 200) {
              // RFC 9110 §15.2: interim responses precede the final one. 101 would switch
              // protocols, which a proxy that never forwards Upgrade did not ask for.
              if (this.status === 101) return this.fail('unexpected-switching-protocols');
              if (++this.informational > this.limits.maxInformational) return this.fail('too-many-informational');
              const fields = this.fields;
              this.state = 'status-line';
              this.headerBytes = 0;
              return { type: 'informational', status: this.status, fields };
            }
            return this.finishHead();
          }
          if (this.fields.length >= this.limits.maxHeaderCount) return this.fail('too-many-fields');
          const field = parseFieldLine(line.slice(0, line.length - 2));
          if (typeof field === 'string') return this.fail(field);
          this.fields.push(field);
          continue;
        }

        case 'length-body': {
          if (this.remaining === 0) return this.finish([]);
          const data = this.input.take(this.remaining);
          if (data === null) return this.starved('truncated-body');
          this.remaining -= data.length;
          this.bodyBytes += data.length;
          return { type: 'body', data };
        }

        case 'close-body': {
          const data = this.input.take(Infinity);
          if (data !== null) {
            this.bodyBytes += data.length;
            return { type: 'body', data };
          }
          // RFC 9112 §6.3 (8): the body ends when the server closes.
          return this.eof ? this.finish([]) : null;
        }

        case 'chunk-size': {
          const line = this.input.readLine(this.limits.maxChunkLineBytes);
          if (line === null) return this.starved('truncated-body');
          if (line === TOO_LONG) return this.fail('chunk-line-too-long');
          const ending = checkLineEnding(line);
          if (ending) return this.fail(ending);
          const size = parseChunkSize(line.slice(0, line.length - 2));
          if (typeof size === 'string') return this.fail(size);
          if (size === 0) {
            this.fields = [];
            this.headerBytes = 0;
            this.state = 'trailers';
          } else {
            this.remaining = size;
            this.state = 'chunk-data';
          }
          continue;
        }

        case 'chunk-data': {
          const data = this.input.take(this.remaining);
          if (data === null) return this.starved('truncated-body');
          this.remaining -= data.length;
          this.bodyBytes += data.length;
          if (this.remaining === 0) this.state = 'chunk-data-crlf';
          return { type: 'body', data };
        }

        case 'chunk-data-crlf': {
          const line = this.input.readLine(2);
          if (line === null) return this.starved('truncated-body');
          if (line === TOO_LONG || line.length !== 2 || line.charCodeAt(0) !== 0x0d) return this.fail('bad-chunk-terminator');
          this.state = 'chunk-size';
          continue;
        }

        case 'trailers': {
          const line = this.input.readLine(this.limits.maxHeaderBytes - this.headerBytes);
          if (line === null) return this.starved('truncated-body');
          if (line === TOO_LONG) return this.fail('trailers-too-large');
          this.headerBytes += line.length;
          const ending = checkLineEnding(line);
          if (ending) return this.fail(ending);
          if (line.length === 2) return this.finish(this.fields);
          if (this.fields.length >= this.limits.maxHeaderCount) return this.fail('too-many-trailer-fields');
          const field = parseFieldLine(line.slice(0, line.length - 2));
          if (typeof field === 'string') return this.fail(field);
          this.fields.push(field);
          continue;
        }

        case 'done':
        case 'failed':
          return null;
      }
    }
  }

  /** Decide the framing once the field section is complete (RFC 9112 §6.3). */
  private finishHead(): ResponseEvent {
    const headers = new Map<string, string>();
    const lengths: string[] = [];
    const codings: string[] = [];
    let hasTransferEncoding = false;
    for (const [name, value] of this.fields) {
      const prev = headers.get(name);
      headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
      if (name === 'content-length') lengths.push(...splitList(value, true));
      else if (name === 'transfer-encoding') {
        hasTransferEncoding = true;
        codings.push(...splitList(value, false).map((c) => c.toLowerCase()));
      }
    }
    const connection = splitList(headers.get('connection') ?? '', false).map((t) => t.toLowerCase());
    let keepAlive = connection.includes('close') ? false : this.version === '1.1' || connection.includes('keep-alive');

    let framing: BodyFraming;
    let contentLength: number | null = null;
    const status = this.status;
    if (this.requestMethod === 'HEAD' || status === 204 || status === 304) {
      // RFC 9110 §6.4.1: these never have content, whatever the fields say.
      framing = 'none';
      const v = lengths[0];
      if (v !== undefined && /^\d{1,15}$/.test(v) && lengths.every((x) => x === v)) contentLength = Number(v);
    } else if (hasTransferEncoding) {
      if (this.version === '1.0') return this.fail('transfer-encoding-in-http10');
      if (lengths.length > 0) return this.fail('content-length-and-transfer-encoding');
      if (codings.length !== 1 || codings[0] !== 'chunked') return this.fail('unsupported-transfer-coding');
      framing = 'chunked';
    } else if (lengths.length > 0) {
      const digits = contentLengthDigits(lengths);
      if (digits === 'bad-content-length' || digits === 'conflicting-content-length') return this.fail(digits);
      if (digits.length > 15) return this.fail('content-length-too-large');
      contentLength = Number(digits);
      framing = 'length';
    } else {
      framing = 'close';
      keepAlive = false;
    }

    const head: ResponseHead = {
      version: this.version,
      status,
      reason: this.reason,
      fields: this.fields,
      headers,
      framing,
      contentLength: framing === 'length' || framing === 'none' ? contentLength : null,
      keepAlive,
    };
    if (framing === 'chunked') this.state = 'chunk-size';
    else if (framing === 'close') this.state = 'close-body';
    else {
      // 'none' too: a length of 0, so the next call returns `end`.
      this.remaining = framing === 'length' ? contentLength! : 0;
      this.state = 'length-body';
    }
    return { type: 'head', head };
  }

  private finish(trailers: Field[]): ResponseEvent {
    this.state = 'done';
    return { type: 'end', trailers };
  }

  /** Out of input: wait for more, or, after the server closed, the response is cut short. */
  private starved(reason: string): ResponseEvent | null {
    if (!this.eof) return null;
    return this.fail(reason);
  }

  private fail(reason: string): ResponseEvent {
    this.state = 'failed';
    this.input.clear();
    return { type: 'error', reason };
  }
}
