/**
 * Incremental HTTP/1.1 request parser (RFC 9112), sans-I/O.
 *
 * TCP delivers a byte stream, not messages: one request may arrive split at any byte
 * across many chunks, and one chunk may hold several pipelined requests. So the parser
 * is fed chunks as they come (`feed`) and the caller pulls events out one at a time
 * (`next`):
 *
 *     parser.feed(chunk);
 *     for (let ev = parser.next(); ev; ev = parser.next()) { ... }
 *
 * Events for one message are `head`, zero or more `body` chunks, then `end`; or a
 * single `error` carrying the HTTP status to answer with, after which the parser is
 * dead (the connection must be closed: after a framing error we can no longer tell
 * where the next request starts).
 *
 * Pulling (instead of a callback per event) lets the caller stop between messages, so a
 * server answers pipelined requests strictly in order, and lets it set the body limit
 * for a request after seeing its head (`setBodyLimit`) but before any body is accepted.
 *
 * Body chunks are `subarray` views of the fed chunks, never copies. Only a line that
 * straddles two chunks is copied (into a small bounded `carry` buffer), so feeding one
 * byte at a time costs O(n), not O(n²).
 *
 * The parser is strict where leniency enables request smuggling (RFC 9112 §11.2):
 * Content-Length with Transfer-Encoding, conflicting Content-Lengths, obs-fold, bare CR
 * or bare LF, whitespace before the colon, `chunked` not last: all rejected with 400.
 */

import type { Field } from './input.js';
import { InputQueue, TOKEN, TOO_LONG, checkLineEnding, contentLengthDigits, parseChunkSize, parseFieldLine, splitList } from './input.js';

export interface ParserLimits {
  /** Longest request-target in octets; longer → 414 (RFC 9112 §3: support at least 8000). */
  maxTargetLength: number;
  /** Size of the field section (all field lines with their CRLFs); larger → 431 (RFC 6585 §5). */
  maxHeaderBytes: number;
  /** Number of field lines; more → 431. */
  maxHeaderCount: number;
  /** Default largest message body; the caller may change it per request (`setBodyLimit`). Larger → 413. */
  maxBodyBytes: number;
  /** Longest chunk-size line, extensions included; longer → 400. */
  maxChunkLineBytes: number;
}

export const DEFAULT_LIMITS: Readonly<ParserLimits> = {
  maxTargetLength: 8 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxBodyBytes: 1024 * 1024 * 1024,
  maxChunkLineBytes: 4 * 1024,
};

export type HttpVersion = '1.0' | '1.1';

export type { Field };

export interface RequestHead {
  method: string;
  target: string;
  version: HttpVersion;
  /** Every field line in arrival order. */
  fields: Field[];
  /** Fields by lower-case name; repeated fields joined with ", " (RFC 9110 §5.3). */
  headers: Map<string, string>;
  /** Body length from Content-Length; null when the body is chunked or absent. */
  contentLength: number | null;
  /** Body uses the chunked transfer coding (RFC 9112 §7.1). */
  chunked: boolean;
  /** The client wants the connection kept open after this exchange (RFC 9112 §9.3). */
  keepAlive: boolean;
}

export type ParseEvent =
  | { type: 'head'; head: RequestHead }
  | { type: 'body'; data: Uint8Array }
  | { type: 'end'; trailers: Field[] }
  | { type: 'error'; status: number; reason: string };

type State =
  | 'request-line'
  | 'fields'
  | 'body-start' // head emitted; the body limit may still change
  | 'length-body'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-data-crlf'
  | 'trailers'
  | 'failed';

const CR = 0x0d;
// tchar and field-value rules live with the line rules in input.ts; re-exported for the server.
export { BAD_VALUE_CHAR, TOKEN } from './input.js';
/** request-target: visible ASCII only, no whitespace (RFC 9112 §3.2, RFC 3986). */
const TARGET = /^[\x21-\x7e]+$/;
const VERSION = /^HTTP\/(\d)\.(\d)$/;
/** scheme "://" authority at the start of an absolute-form request-target (RFC 9112 §3.2.2). */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** Leading empty lines ignored before a request-line (RFC 9112 §2.2 says at least one). */
const MAX_EMPTY_LINES = 8;
/** Method, two spaces and "HTTP/1.1" fit in this beside the target. */
const REQUEST_LINE_OVERHEAD = 64;

export class RequestParser {
  private readonly limits: ParserLimits;

  // Input not yet consumed.
  private readonly input = new InputQueue();

  private state: State = 'request-line';

  // The message being parsed.
  private emptyLines = 0;
  private method = '';
  private target = '';
  private version: HttpVersion = '1.1';
  private fields: Field[] = [];
  private fieldBytes = 0;
  private head: RequestHead | null = null;
  private bodyLimit: number;
  private bodyBytes = 0;
  /** Bytes left in the Content-Length body or in the current chunk. */
  private remaining = 0;

  constructor(limits: Partial<ParserLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.bodyLimit = this.limits.maxBodyBytes;
  }

  /** Queue bytes as they arrived. The chunk must not be modified afterwards: body events are views of it. */
  feed(chunk: Uint8Array): void {
    if (this.state === 'failed') return;
    this.input.push(chunk);
  }

  /** Drop every byte fed and not yet parsed (the server is closing and reads no further). */
  discardInput(): void {
    this.input.clear();
  }

  /** Bytes fed but not yet turned into events. A caller uses this to stop reading its socket. */
  get bufferedBytes(): number {
    return this.input.size;
  }

  /** True between messages with nothing buffered: no request has started. */
  get idle(): boolean {
    return this.state === 'request-line' && this.bufferedBytes === 0 && this.emptyLines === 0;
  }

  /** True after an error event: nothing more will be parsed. */
  get failed(): boolean {
    return this.state === 'failed';
  }

  /**
   * Body bytes of the current message not yet received: exact for Content-Length,
   * undefined for chunked (unknown), 0 between messages.
   */
  get bodyRemaining(): number | undefined {
    switch (this.state) {
      case 'body-start':
        return this.head!.chunked ? undefined : (this.head!.contentLength ?? 0);
      case 'length-body':
        return this.remaining;
      case 'chunk-size':
      case 'chunk-data':
      case 'chunk-data-crlf':
      case 'trailers':
        return undefined;
      default:
        return 0;
    }
  }

  /** Set the body limit for the message whose head was just returned (before its first body event). */
  setBodyLimit(bytes: number): void {
    if (this.state !== 'body-start') throw new Error('setBodyLimit: only between a head event and its body');
    this.bodyLimit = bytes;
  }

  /** The next event, or null when more input is needed (or after an error). */
  next(): ParseEvent | null {
    // Every pass either consumes input, changes state, or returns: the loop is bounded by the input.
    for (;;) {
      switch (this.state) {
        case 'request-line': {
          const line = this.readLine(this.limits.maxTargetLength + REQUEST_LINE_OVERHEAD);
          if (line === null) return null;
          if (line === TOO_LONG) return this.fail(414, 'request-line-too-long');
          const ending = checkLineEnding(line);
          if (ending) return this.fail(400, ending);
          if (line.length === 2) {
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
            if (++this.emptyLines > MAX_EMPTY_LINES) return this.fail(400, 'too-many-empty-lines');
            continue;
          }
          const error = this.parseRequestLine(line.slice(0, line.length - 2));
          if (error) return error;
          this.state = 'fields';
          continue;
        }

        case 'fields': {
          const line = this.readLine(this.limits.maxHeaderBytes - this.fieldBytes);
          if (line === null) return null;
          if (line === TOO_LONG) return this.fail(431, 'header-section-too-large');
          this.fieldBytes += line.length;
          const ending = checkLineEnding(line);
          if (ending) return this.fail(400, ending);
          if (line.length === 2) return this.finishHead();
          if (this.fields.length >= this.limits.maxHeaderCount) return this.fail(431, 'too-many-fields');
          const field = parseFieldLine(line.slice(0, line.length - 2));
          if (typeof field === 'string') return this.fail(400, field);
          this.fields.push(field);
          continue;
        }

        case 'body-start': {
          const head = this.head!;
          if (head.chunked) {
            this.state = 'chunk-size';
            continue;
          }
          const length = head.contentLength ?? 0;
          if (length > this.bodyLimit) return this.fail(413, 'body-too-large');
          if (length === 0) return this.finishMessage([]);
          this.remaining = length;
          this.state = 'length-body';
          continue;
        }

        case 'length-body': {
          if (this.remaining === 0) return this.finishMessage([]);
          const data = this.take(this.remaining);
          if (data === null) return null;
          this.remaining -= data.length;
          return { type: 'body', data };
        }

        case 'chunk-size': {
          // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF (RFC 9112 §7.1)
          const line = this.readLine(this.limits.maxChunkLineBytes);
          if (line === null) return null;
          if (line === TOO_LONG) return this.fail(400, 'chunk-line-too-long');
          const ending = checkLineEnding(line);
          if (ending) return this.fail(400, ending);
          const size = parseChunkSize(line.slice(0, line.length - 2));
          if (typeof size === 'string') return this.fail(400, size);
          if (size === 0) {
            this.fieldBytes = 0;
            this.fields = [];
            this.state = 'trailers';
            continue;
          }
          if (this.bodyBytes + size > this.bodyLimit) return this.fail(413, 'body-too-large');
          this.bodyBytes += size;
          this.remaining = size;
          this.state = 'chunk-data';
          continue;
        }

        case 'chunk-data': {
          const data = this.take(this.remaining);
          if (data === null) return null;
          this.remaining -= data.length;
          if (this.remaining === 0) this.state = 'chunk-data-crlf';
          return { type: 'body', data };
        }

        case 'chunk-data-crlf': {
          // Exactly CRLF after the data: anything else means the size lied.
          const line = this.readLine(2);
          if (line === null) return null;
          if (line === TOO_LONG || line.length !== 2 || line.charCodeAt(0) !== CR) return this.fail(400, 'bad-chunk-terminator');
          this.state = 'chunk-size';
          continue;
        }

        case 'trailers': {
          // trailer-section = *( field-line CRLF ), then CRLF (RFC 9112 §7.1.2). Same rules as the header.
          const line = this.readLine(this.limits.maxHeaderBytes - this.fieldBytes);
          if (line === null) return null;
          if (line === TOO_LONG) return this.fail(431, 'trailer-section-too-large');
          this.fieldBytes += line.length;
          const ending = checkLineEnding(line);
          if (ending) return this.fail(400, ending);
          if (line.length === 2) return this.finishMessage(this.fields);
          if (this.fields.length >= this.limits.maxHeaderCount) return this.fail(431, 'too-many-trailer-fields');
          const field = parseFieldLine(line.slice(0, line.length - 2));
          if (typeof field === 'string') return this.fail(400, field);
          this.fields.push(field);
          continue;
        }

        case 'failed':
          return null;
      }
    }
  }

  /** request-line = method SP request-target SP HTTP-version (RFC 9112 §3). */
  private parseRequestLine(line: string): ParseEvent | null {
    const sp1 = line.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
    if (sp1 <= 0 || sp2 < 0 || line.indexOf(' ', sp2 + 1) >= 0) return this.fail(400, 'bad-request-line');
    const method = line.slice(0, sp1);
    const target = line.slice(sp1 + 1, sp2);
    const versionText = line.slice(sp2 + 1);
    // The two versions every client sends are compared as they are; the pattern only decides
    // between a malformed version (400) and an unsupported one (505).
    const version = versionText === 'HTTP/1.1' || versionText === 'HTTP/1.0' ? undefined : VERSION.exec(versionText);
    if (!TOKEN.test(method)) return this.fail(400, 'bad-method');
    if (target.length > this.limits.maxTargetLength) return this.fail(414, 'target-too-long');
    if (version === null) return this.fail(400, 'bad-version');
    const v = version === undefined ? versionText.slice(5) : `${version[1]}.${version[2]}`;
    if (v !== '1.1' && v !== '1.0') return this.fail(505, 'unsupported-version');
    if (!TARGET.test(target)) return this.fail(400, 'bad-target');
    this.method = method;
    this.target = target;
    this.version = v;
    return null;
  }

  /** The empty line after the fields: decide how the body is framed (RFC 9112 §6.3). */
  private finishHead(): ParseEvent {
    const headers = new Map<string, string>();
    let hosts = 0;
    // Made only when the fields are there: most requests have neither.
    let contentLengths: string[] | undefined;
    let codings: string[] | undefined;
    const fields = this.fields;
    for (let i = 0; i < fields.length; i++) {
      const [name, value] = fields[i]!;
      const prev = headers.get(name);
      headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
      if (name === 'host') hosts++;
      else if (name === 'content-length') (contentLengths ??= []).push(...splitList(value, true));
      else if (name === 'transfer-encoding') (codings ??= []).push(...splitList(value, false).map((c) => c.toLowerCase()));
    }

    // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, or with more than one.
    if (hosts > 1) return this.fail(400, 'duplicate-host');
    if (hosts === 0 && this.version === '1.1') return this.fail(400, 'missing-host');

    let contentLength: number | null = null;
    let chunked = false;
    if (codings !== undefined) {
      // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty; §6.3 (3): with Content-Length
      // it is a smuggling attempt. We refuse both rather than guess which framing a proxy used.
      if (this.version === '1.0') return this.fail(400, 'transfer-encoding-in-http10');
      if (contentLengths !== undefined && contentLengths.length > 0) return this.fail(400, 'content-length-and-transfer-encoding');
      if (codings.length === 0) return this.fail(400, 'bad-transfer-encoding');
      // §6.3 (4): in a request, chunked must be the final coding, else the length is unknowable.
      if (codings[codings.length - 1] !== 'chunked') return this.fail(400, 'chunked-not-last');
      // §7: chunked must not be applied twice.
      if (codings.indexOf('chunked') !== codings.length - 1) return this.fail(400, 'chunked-twice');
      // §6.1: a coding we do not understand → 501.
      if (codings.length > 1) return this.fail(501, 'unsupported-transfer-coding');
      chunked = true;
    } else if (contentLengths !== undefined && contentLengths.length > 0) {
      const digits = contentLengthDigits(contentLengths);
      if (digits === 'bad-content-length' || digits === 'conflicting-content-length') return this.fail(400, digits);
      // Beyond 2^53 a double is no longer exact; such a body exceeds every limit anyway.
      contentLength = digits.length > 15 ? Number.MAX_SAFE_INTEGER : Number(digits);
    }

    // RFC 9112 §9.3: "close" ends the connection; HTTP/1.0 persists only with "keep-alive".
    const connectionField = headers.get('connection');
    let keepAlive = this.version === '1.1';
    if (connectionField !== undefined) {
      const connection = splitList(connectionField, false).map((t) => t.toLowerCase());
      keepAlive = connection.includes('close') ? false : keepAlive || connection.includes('keep-alive');
    }

    const head: RequestHead = {
      method: this.method,
      target: this.target,
      version: this.version,
      fields: this.fields,
      headers,
      contentLength,
      chunked,
      keepAlive,
    };
    this.head = head;
    this.bodyLimit = this.limits.maxBodyBytes;
    this.bodyBytes = 0;
    this.state = 'body-start';
    return { type: 'head', head };
  }

  private finishMessage(trailers: Field[]): ParseEvent {
    this.state = 'request-line';
    this.emptyLines = 0;
    this.fields = [];
    this.fieldBytes = 0;
    this.head = null;
    this.remaining = 0;
    this.bodyBytes = 0;
    return { type: 'end', trailers };
  }

  private fail(status: number, reason: string): ParseEvent {
    this.state = 'failed';
    this.input.clear();
    this.head = null;
    return { type: 'error', status, reason };
  }

  private readLine(limit: number): string | null | typeof TOO_LONG {
    return this.input.readLine(limit);
  }

  private take(max: number): Buffer | null {
    return this.input.take(max);
  }
}

/**
 * Path and query of a request-target (RFC 9112 §3.2). Absolute-form
 * (`http://host/p?q`) is reduced to its path; asterisk-form stays `*`. Both remain
 * percent-encoded.
 */
export function splitTarget(target: string): { path: string; query: string } {
  let rest = target;
  // Origin-form (a leading "/") is what nearly every request carries: no scheme to look for.
  const scheme = target.charCodeAt(0) === 0x2f ? null : ABSOLUTE_FORM.exec(target);
  if (scheme) {
    rest = target.slice(scheme[0].length);
    if (!rest.startsWith('/')) rest = '/' + rest;
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  return q < 0 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}
