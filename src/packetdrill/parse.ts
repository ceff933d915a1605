/**
 * A parser for packetdrill's script language (the grammar of google/packetdrill's
 * gtests/net/packetdrill/parser.y and lexer.l, written anew for what netstack can run).
 *
 * A script is a list of events, one per line, each with a time and an action:
 *
 *     0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3            a system call and its result
 *    +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>        a packet that goes in (to the stack)
 *    +0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>           a packet that must come out
 *  +.1...0.2 read(4, ..., 100) = 100                         a blocking call: starts, returns later
 *     * > F. 1:1(0) ack 1                                     any time
 *  0.1~0.3 > . 1:1(0) ack 1                                   any time in a range
 *
 * plus `--name=value` option lines, `` `shell` `` lines and `%{ python }%` blocks (kept as events
 * so the runner can say why it skips them), and `//` and `/* *\/` comments.
 *
 * Times are parsed to milliseconds. Relative times (`+x`) are resolved here, as packetdrill's
 * parser does: relative to the previous event's start time. In `+a...b` both a and b count from
 * the previous event (so `+0...0.2` returns 0.2 s after the previous event).
 *
 * Errors are `PacketdrillSyntaxError` with the line number; the parser never throws anything else.
 */

export class PacketdrillSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The syntax tree
// ---------------------------------------------------------------------------------------------

export interface EventTime {
  /** 'any' is `*`: the event may happen at any time. */
  kind: 'exact' | 'range' | 'any';
  /** Absolute script time of the event's start, ms (for `*`, the previous event's time). */
  start: number;
  /** For `a~b`: the latest acceptable time, ms. */
  rangeEnd?: number;
  /** For a blocking call `a...b`: when the call must return, ms. */
  blockingEnd?: number;
}

/** One TCP option as written: order matters for outbound packets (packetdrill compares them in order). */
export type TcpOpt =
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; value: number }
  | { kind: 'sackOK' }
  | { kind: 'sack'; blocks: Array<[number, number]> }
  | { kind: 'TS'; val: number; ecr: number };

export interface PacketSpec {
  dir: 'in' | 'out';
  /** Flag letters as written, in packetdrill's alphabet: S . P F R U E W (and - for none). */
  flags: string;
  start: number;
  end: number;
  len: number;
  ack?: number;
  win?: number;
  urg?: number;
  /** undefined: no options written; 'any': `<...>`. */
  options?: TcpOpt[] | 'any';
}

export interface IcmpSpec {
  dir: 'in' | 'out';
  type: string;
  code?: string;
  mtu?: number;
  /** The TCP segment the ICMP message quotes, `[start:end(len)]`. */
  quoted?: { start: number; end: number; len: number };
}

/** A system call argument or result expression. */
export type Expr =
  | { t: 'ellipsis' }
  | { t: 'int'; v: number }
  | { t: 'sym'; v: string }
  | { t: 'str'; v: string }
  | { t: 'or'; items: Expr[] }
  | { t: 'array'; items: Expr[] }
  | { t: 'struct'; fields: Array<{ name: string; value: Expr }> };

export interface SyscallSpec {
  name: string;
  args: Expr[];
  /** The expected return value. */
  result: Expr;
  /** The expected errno name when the result is -1, e.g. 'EAGAIN'. */
  errno?: string;
}

export type Action =
  | { type: 'packet'; packet: PacketSpec }
  | { type: 'icmp'; icmp: IcmpSpec }
  | { type: 'syscall'; call: SyscallSpec }
  | { type: 'shell'; command: string }
  | { type: 'python'; code: string }
  | { type: 'unsupported'; what: string };

export interface ScriptEvent {
  line: number;
  /** The event's source text (one line, comments removed), for messages. */
  text: string;
  time: EventTime;
  action: Action;
}

export interface Script {
  /** `--name=value` lines, in order (a bare `--name` has value ''). */
  options: Array<{ name: string; value: string; line: number }>;
  events: ScriptEvent[];
}

// ---------------------------------------------------------------------------------------------
// Statements: comments out, multi-line constructs joined
// ---------------------------------------------------------------------------------------------

interface Statement {
  line: number;
  text: string;
}

/** Split the source into statements: comments removed, lines joined while brackets are open. */
export function statements(source: string): Statement[] {
  const out: Statement[] = [];
  const lines = joinShellLines(source.split(/\r?\n/));
  let inBlockComment = false;
  let pending: Statement | undefined;
  let depth = 0;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let raw = lines[i]!;
    // A python block %{ ... }% is one statement, taken verbatim.
    if (!pending && !inBlockComment && /%\{/.test(raw)) {
      let code = raw;
      let j = i;
      while (!/\}%/.test(lines[j]!) && j + 1 < lines.length) code += '\n' + lines[++j]!;
      if (!/\}%/.test(lines[j]!)) throw new PacketdrillSyntaxError(lineNo, 'a %{ python block is never closed with }%');
      out.push({ line: lineNo, text: code.trim() });
      i = j;
      continue;
    }
    let text = '';
    let inString = false;
    for (let k = 0; k < raw.length; k++) {
      const c = raw[k]!;
      if (inBlockComment) {
        if (c === '*' && raw[k + 1] === '/') {
          inBlockComment = false;
          k++;
        }
        continue;
      }
      if (inString) {
        text += c;
        if (c === '\\' && k + 1 < raw.length) text += raw[++k]!;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') {
        inString = true;
        text += c;
        continue;
      }
      if (c === '/' && raw[k + 1] === '/') break;
      if (c === '/' && raw[k + 1] === '*') {
        inBlockComment = true;
        k++;
        text += ' ';
        continue;
      }
      // Backquoted shell commands may contain anything (even //): take them verbatim.
      if (c === '`') {
        const close = raw.indexOf('`', k + 1);
        if (close < 0) throw new PacketdrillSyntaxError(lineNo, 'a `shell command` is never closed');
        text += raw.slice(k, close + 1);
        k = close;
        continue;
      }
      if (c === '(' || c === '[' || c === '{') depth++;
      if (c === ')' || c === ']' || c === '}') depth--;
      text += c;
    }
    if (inString) throw new PacketdrillSyntaxError(lineNo, 'a string is never closed');
    raw = text.trim();
    if (pending) {
      if (raw) pending.text += ' ' + raw;
    } else if (raw) {
      pending = { line: lineNo, text: raw };
    }
    if (pending && depth <= 0) {
      if (depth < 0) throw new PacketdrillSyntaxError(pending.line, 'a closing bracket without an opening one');
      out.push(pending);
      pending = undefined;
      depth = 0;
    }
  }
  if (inBlockComment) throw new PacketdrillSyntaxError(lines.length, 'a /* comment is never closed');
  if (pending) throw new PacketdrillSyntaxError(pending.line, 'a bracket opened here is never closed');
  return out;
}

/**
 * A `shell command` may span lines (Linux's scripts write "`./defaults.sh" and
 * "./set_sysctls.py ...`" on two): such lines are joined, newline kept, into the first one's slot;
 * the lines they took stay as empty lines so that line numbers still count from the source.
 */
function joinShellLines(lines: string[]): string[] {
  const out = [...lines];
  const ticks = (l: string) => (/^\s*(\/\/|\/\*|\*)/.test(l) ? 0 : (l.match(/`/g) ?? []).length);
  for (let i = 0; i < out.length; i++) {
    if (ticks(out[i]!) % 2 === 0) continue;
    let j = i + 1;
    while (j < out.length && (out[j]!.match(/`/g) ?? []).length % 2 === 0) j++;
    if (j >= out.length) continue; // never closed: statements() says so
    out[i] = out.slice(i, j + 1).join('\n');
    for (let k = i + 1; k <= j; k++) out[k] = '';
    i = j;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Script
// ---------------------------------------------------------------------------------------------

const NUMBER = String.raw`(?:\d+(?:\.\d*)?|\.\d+)`;
const TIME_RE = new RegExp(
  String.raw`^(?:(\*)|(\+)?(${NUMBER})(?:(~)(\+)?(${NUMBER})|(\.\.\.)(${NUMBER}))?)\s+`,
);

/** Parse a whole script. Throws PacketdrillSyntaxError (with a line number) on malformed input. */
export function parseScript(source: string): Script {
  const script: Script = { options: [], events: [] };
  let last = 0; // start time of the previous event, ms
  for (const st of statements(source)) {
    if (st.text.startsWith('--')) {
      if (script.events.length > 0) throw new PacketdrillSyntaxError(st.line, `option ${st.text} after the first event`);
      const m = /^--([A-Za-z0-9_]+)(?:=(.*))?$/.exec(st.text);
      if (!m) throw new PacketdrillSyntaxError(st.line, `cannot read option '${st.text}'`);
      script.options.push({ name: m[1]!, value: (m[2] ?? '').trim(), line: st.line });
      continue;
    }
    // A bare shell command or python block (packetdrill allows them without a time).
    if (st.text.startsWith('`') || st.text.startsWith('%{')) {
      script.events.push({ line: st.line, text: st.text, time: { kind: 'exact', start: last }, action: parseAction(st.text, st.line) });
      continue;
    }
    const m = TIME_RE.exec(st.text + ' ');
    if (!m) throw new PacketdrillSyntaxError(st.line, `an event must start with a time (e.g. 0, +.1, *, 0.1~0.2, +0...0.5): '${st.text}'`);
    let time: EventTime;
    if (m[1]) {
      time = { kind: 'any', start: last };
    } else {
      const base = m[2] ? last : 0;
      const start = base + seconds(m[3]!);
      if (m[4]) {
        const end = (m[5] ? last : 0) + seconds(m[6]!);
        if (end < start) throw new PacketdrillSyntaxError(st.line, 'a time range must not end before it starts');
        time = { kind: 'range', start, rangeEnd: end };
      } else if (m[7]) {
        const end = base + seconds(m[8]!);
        if (end < start) throw new PacketdrillSyntaxError(st.line, 'a blocking call cannot return before it starts');
        time = { kind: 'exact', start, blockingEnd: end };
      } else {
        time = { kind: 'exact', start };
      }
      if (start < last - 1e-9) throw new PacketdrillSyntaxError(st.line, `time goes backwards (${fmt(start)} s after ${fmt(last)} s)`);
      last = start;
    }
    const actionText = (st.text + ' ').slice(m[0].length).trim();
    const action = parseAction(actionText, st.line);
    if (time.blockingEnd !== undefined && action.type !== 'syscall') {
      throw new PacketdrillSyntaxError(st.line, 'only a system call can have a blocking time (a...b)');
    }
    script.events.push({ line: st.line, text: st.text, time, action });
  }
  return script;
}

function seconds(text: string): number {
  // Milliseconds, rounded to the microsecond the script can express.
  return Math.round(Number(text) * 1e6) / 1e3;
}

function fmt(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function parseAction(text: string, line: number): Action {
  if (text.startsWith('`')) {
    if (!text.endsWith('`')) throw new PacketdrillSyntaxError(line, 'text after a `shell command`');
    return { type: 'shell', command: text.slice(1, -1).trim() };
  }
  if (text.startsWith('%{')) return { type: 'python', code: text.replace(/^%\{/, '').replace(/\}%$/, '').trim() };
  if (text.startsWith('<') || text.startsWith('>')) {
    const dir = text[0] === '<' ? 'in' : 'out';
    const body = text.slice(1).trim();
    if (/^icmp\b/.test(body)) return { type: 'icmp', icmp: parseIcmp(dir, body.slice(4).trim(), line) };
    if (/^(udp|udplite|gre|mpls|ipv4|ipv6)\b/.test(body)) return { type: 'unsupported', what: `${body.split(/\s/)[0]} packets` };
    if (body.startsWith('[') || /^(ect0|ect1|ce|noecn|ect01)\b/.test(body)) return { type: 'unsupported', what: 'ECN/TOS marks on packets' };
    return { type: 'packet', packet: parsePacket(dir, body, line) };
  }
  if (/^[A-Za-z_][A-Za-z0-9_]*\s*\(/.test(text)) return { type: 'syscall', call: parseSyscall(text, line) };
  throw new PacketdrillSyntaxError(line, `cannot read event '${text}'`);
}

// ---------------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------------

const FLAG_ALPHABET = 'SPFRU.EW-';

/** `FLAGS start:end(len) [ack N] [win N] [urg N] [<options>]` */
export function parsePacket(dir: 'in' | 'out', text: string, line: number): PacketSpec {
  const m = /^(\S+)\s+(\d+):(\d+)\((\d+)\)(.*)$/.exec(text);
  if (!m) throw new PacketdrillSyntaxError(line, `cannot read TCP packet '${text}' (expected e.g. 'S. 0:0(0) ack 1 win 65535')`);
  const flags = m[1]!;
  for (const c of flags) {
    if (!FLAG_ALPHABET.includes(c)) throw new PacketdrillSyntaxError(line, `unknown TCP flag '${c}' in '${flags}' (flags are S . P F R U E W -)`);
    if (flags.indexOf(c) !== flags.lastIndexOf(c)) throw new PacketdrillSyntaxError(line, `flag '${c}' appears twice in '${flags}'`);
  }
  if (flags.includes('-') && flags.length > 1) throw new PacketdrillSyntaxError(line, `'-' (no flags) cannot be combined with other flags`);
  const start = u32(m[2]!, line);
  const end = u32(m[3]!, line);
  const len = Number(m[4]);
  if (((end - start) >>> 0) !== len) throw new PacketdrillSyntaxError(line, `${start}:${end} is ${(end - start) >>> 0} bytes, not ${len}`);
  const spec: PacketSpec = { dir, flags, start, end, len };
  let rest = m[5]!.trim();
  while (rest) {
    let k: RegExpExecArray | null;
    if ((k = /^(ack|win|urg)\s+(\d+)\s*/.exec(rest))) {
      const v = u32(k[2]!, line);
      if (k[1] === 'ack') spec.ack = v;
      else if (k[1] === 'win') {
        if (v > 0xffff) throw new PacketdrillSyntaxError(line, `win ${v} does not fit the 16-bit window field`);
        spec.win = v;
      } else {
        if (v > 0xffff) throw new PacketdrillSyntaxError(line, `urg ${v} does not fit the 16-bit urgent pointer`);
        spec.urg = v;
      }
      rest = rest.slice(k[0].length);
    } else if (rest.startsWith('<')) {
      const close = rest.indexOf('>');
      if (close < 0) throw new PacketdrillSyntaxError(line, 'TCP options opened with < are never closed with >');
      spec.options = parseTcpOptions(rest.slice(1, close), line);
      rest = rest.slice(close + 1).trim();
    } else {
      throw new PacketdrillSyntaxError(line, `unexpected '${rest}' in a TCP packet`);
    }
  }
  if (spec.ack !== undefined && !flags.includes('.')) throw new PacketdrillSyntaxError(line, `'ack ${spec.ack}' without the ACK flag '.'`);
  return spec;
}

export function parseTcpOptions(text: string, line: number): TcpOpt[] | 'any' {
  const t = text.trim();
  if (t === '...') return 'any';
  if (t === '') return [];
  const out: TcpOpt[] = [];
  for (const part of t.split(',').map((p) => p.trim())) {
    let m: RegExpExecArray | null;
    if (part === 'nop') out.push({ kind: 'nop' });
    else if (part === 'eol') out.push({ kind: 'eol' });
    else if (part === 'sackOK') out.push({ kind: 'sackOK' });
    else if ((m = /^mss\s+(\d+)$/.exec(part))) out.push({ kind: 'mss', value: bounded(m[1]!, 0xffff, 'mss', line) });
    else if ((m = /^wscale\s+(\d+)$/.exec(part))) out.push({ kind: 'wscale', value: bounded(m[1]!, 0xff, 'wscale', line) });
    else if ((m = /^TS\s+val\s+(\d+)\s+ecr\s+(\d+)$/.exec(part))) out.push({ kind: 'TS', val: u32(m[1]!, line), ecr: u32(m[2]!, line) });
    else if ((m = /^sack((?:\s+\d+:\d+)+)$/.exec(part))) {
      const blocks = [...m[1]!.matchAll(/(\d+):(\d+)/g)].map((b) => [u32(b[1]!, line), u32(b[2]!, line)] as [number, number]);
      if (blocks.length > 4) throw new PacketdrillSyntaxError(line, 'at most 4 SACK blocks fit in the options');
      out.push({ kind: 'sack', blocks });
    } else {
      throw new PacketdrillSyntaxError(line, `unknown TCP option '${part}' (netstack's runner knows mss, wscale, sackOK, sack, TS, nop, eol)`);
    }
  }
  return out;
}

function parseIcmp(dir: 'in' | 'out', text: string, line: number): IcmpSpec {
  // icmp unreachable frag_needed mtu 1200 [1:1461(1460)]
  const m = /^([a-z_]+)(?:\s+([a-z_]+))?(?:\s+mtu\s+(\d+))?(?:\s+\[(\d+):(\d+)\((\d+)\)\])?\s*$/.exec(text);
  if (!m) throw new PacketdrillSyntaxError(line, `cannot read ICMP packet 'icmp ${text}'`);
  const spec: IcmpSpec = { dir, type: m[1]! };
  if (m[2]) spec.code = m[2];
  if (m[3]) spec.mtu = Number(m[3]);
  if (m[4]) spec.quoted = { start: u32(m[4], line), end: u32(m[5]!, line), len: Number(m[6]) };
  return spec;
}

function u32(text: string, line: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v > 0xffffffff) throw new PacketdrillSyntaxError(line, `${text} is not a 32-bit number`);
  return v;
}

function bounded(text: string, max: number, what: string, line: number): number {
  const v = Number(text);
  if (v > max) throw new PacketdrillSyntaxError(line, `${what} ${v} is larger than ${max}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// System calls: name(args) = result [ERRNO (text)]
// ---------------------------------------------------------------------------------------------

type Tok = { k: 'num'; v: number } | { k: 'id'; v: string } | { k: 'str'; v: string } | { k: 'p'; v: string };

export function tokenize(text: string, line: number): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (text.startsWith('...', i)) {
      toks.push({ k: 'p', v: '...' });
      i += 3;
      continue;
    }
    let m: RegExpExecArray | null;
    const rest = text.slice(i);
    if ((m = /^0x[0-9a-fA-F]+/.exec(rest)) || (m = /^\d+/.exec(rest))) {
      toks.push({ k: 'num', v: Number(m[0]) });
      i += m[0].length;
      continue;
    }
    if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
      toks.push({ k: 'id', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (c === '"') {
      let s = '';
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length) {
          const e = text[++j]!;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === '0' ? '\0' : e;
        } else s += text[j];
      }
      if (j >= text.length) throw new PacketdrillSyntaxError(line, 'a string is never closed');
      toks.push({ k: 'str', v: s });
      i = j + 1;
      continue;
    }
    if ('()[]{},=|-'.includes(c)) {
      toks.push({ k: 'p', v: c });
      i++;
      continue;
    }
    throw new PacketdrillSyntaxError(line, `unexpected character '${c}' in '${text}'`);
  }
  return toks;
}

class TokenStream {
  private i = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly line: number,
    private readonly text: string,
  ) {}
  peek(): Tok | undefined {
    return this.toks[this.i];
  }
  next(): Tok {
    const t = this.toks[this.i++];
    if (!t) throw this.error('the line ends too early');
    return t;
  }
  isP(v: string): boolean {
    const t = this.peek();
    return t !== undefined && t.k === 'p' && t.v === v;
  }
  expectP(v: string): void {
    const t = this.next();
    if (t.k !== 'p' || t.v !== v) throw this.error(`expected '${v}', found '${String(t.v)}'`);
  }
  done(): boolean {
    return this.i >= this.toks.length;
  }
  error(message: string): PacketdrillSyntaxError {
    return new PacketdrillSyntaxError(this.line, `${message} in '${this.text}'`);
  }
}

export function parseSyscall(text: string, line: number): SyscallSpec {
  const ts = new TokenStream(tokenize(text, line), line, text);
  const name = ts.next();
  if (name.k !== 'id') throw ts.error('expected a system call name');
  ts.expectP('(');
  const args: Expr[] = [];
  if (!ts.isP(')')) {
    for (;;) {
      args.push(parseExpr(ts));
      if (ts.isP(',')) {
        ts.next();
        continue;
      }
      break;
    }
  }
  ts.expectP(')');
  ts.expectP('=');
  const result = parseExpr(ts);
  let errno: string | undefined;
  const t = ts.peek();
  if (t && t.k === 'id') {
    errno = t.v;
    ts.next();
    if (ts.isP('(')) {
      // The errno's text, e.g. (Resource temporarily unavailable): free words, skipped.
      let depth = 0;
      do {
        const x = ts.next();
        if (x.k === 'p' && x.v === '(') depth++;
        if (x.k === 'p' && x.v === ')') depth--;
      } while (depth > 0);
    }
  }
  if (!ts.done()) throw ts.error('unexpected text after the result');
  if (errno !== undefined && !(result.t === 'int' && result.v === -1)) throw ts.error(`errno ${errno} needs the result -1`);
  return { name: name.v, args, result, errno };
}

function parseExpr(ts: TokenStream): Expr {
  const first = parseTerm(ts);
  if (!ts.isP('|')) return first;
  const items = [first];
  while (ts.isP('|')) {
    ts.next();
    items.push(parseTerm(ts));
  }
  return { t: 'or', items };
}

function parseTerm(ts: TokenStream): Expr {
  const t = ts.next();
  if (t.k === 'p' && t.v === '...') return { t: 'ellipsis' };
  if (t.k === 'num') return { t: 'int', v: t.v };
  if (t.k === 'p' && t.v === '-') {
    const n = ts.next();
    if (n.k !== 'num') throw ts.error("'-' must be followed by a number");
    return { t: 'int', v: -n.v };
  }
  if (t.k === 'id') return { t: 'sym', v: t.v };
  if (t.k === 'str') return { t: 'str', v: t.v };
  if (t.k === 'p' && t.v === '[') {
    const items: Expr[] = [];
    if (!ts.isP(']')) {
      for (;;) {
        items.push(parseExpr(ts));
        if (!ts.isP(',')) break;
        ts.next();
      }
    }
    ts.expectP(']');
    return { t: 'array', items };
  }
  if (t.k === 'p' && t.v === '{') {
    const fields: Array<{ name: string; value: Expr }> = [];
    if (!ts.isP('}')) {
      for (;;) {
        const n = ts.next();
        if (n.k !== 'id') throw ts.error('expected a field name in { }');
        ts.expectP('=');
        fields.push({ name: n.v, value: parseExpr(ts) });
        if (!ts.isP(',')) break;
        ts.next();
      }
    }
    ts.expectP('}');
    return { t: 'struct', fields };
  }
  throw ts.error(`unexpected '${String(t.v)}'`);
}
