/**
 * The proxy's configuration: a subset of nginx's syntax and directives, so a block copied
 * from an nginx setup works unchanged (see README "Load balancing"). Pure: it parses text;
 * the caller reads the file and checks `root` directories.
 *
 *   upstream NAME { server ADDR[:PORT] [weight=N] [max_fails=N] [fail_timeout=T] [backup] [down];
 *                   least_conn; | ip_hash; | hash KEY consistent;   keepalive N; keepalive_timeout T; }
 *   server { listen PORT; location [=] PREFIX { proxy_pass http://NAME-or-ADDR[/URI]; root DIR;
 *            proxy_connect_timeout T; proxy_read_timeout T; proxy_send_timeout T;
 *            proxy_next_upstream error timeout http_502 ...; proxy_next_upstream_tries N; } }
 *
 * optionally wrapped in `http { }`. Every error is a ConfigError that knows its line and
 * column, printed as `file:line:col: sentence`.
 */
import type { BalanceMethod } from './balance/balancer.js';
import type { PeerConfig } from './balance/peer.js';
import { DEFAULT_FAIL_TIMEOUT_MS, DEFAULT_MAX_FAILS } from './balance/peer.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly sentence: string,
  ) {
    super(`${file}:${line}:${col}: ${sentence}`);
  }
}

/** Conditions under which a request goes to the next server (nginx's proxy_next_upstream). */
export type NextUpstreamWhen = 'error' | 'timeout' | 'invalid_header' | 'http_500' | 'http_502' | 'http_503' | 'http_504' | 'http_404' | 'http_429' | 'non_idempotent';
const NEXT_UPSTREAM: readonly string[] = ['error', 'timeout', 'invalid_header', 'http_500', 'http_502', 'http_503', 'http_504', 'http_404', 'http_429', 'non_idempotent', 'off'];

export interface UpstreamConfig {
  name: string;
  method: BalanceMethod;
  /** For `hash`: the key, e.g. `$request_uri`. */
  hashKey: string;
  servers: PeerConfig[];
  /** Idle connections kept for reuse (nginx `keepalive`; 0 = close after each response). */
  keepalive: number;
  keepaliveTimeoutMs: number;
  keepaliveRequests: number;
}

export interface ProxyPassConfig {
  upstream: string;
  /** The URI part of proxy_pass (`http://app/v2/` → `/v2/`): replaces the matched prefix. */
  uri: string | undefined;
  /** The Host sent upstream ($proxy_host): the name or address:port as written after http://. */
  proxyHost: string;
  connectTimeoutMs: number;
  readTimeoutMs: number;
  sendTimeoutMs: number;
  nextUpstream: Set<NextUpstreamWhen>;
  /** 0: every server of the upstream once. */
  nextUpstreamTries: number;
}

export interface LocationConfig {
  path: string;
  exact: boolean;
  proxy: ProxyPassConfig | undefined;
  root: string | undefined;
  /** Where it was written (for errors found later, like a missing root directory). */
  line: number;
  col: number;
}

export interface ProxyConfig {
  file: string;
  listen: number | undefined;
  upstreams: Map<string, UpstreamConfig>;
  locations: LocationConfig[];
}

/** nginx's defaults (ngx_http_proxy_module, ngx_http_upstream_keepalive_module). */
export const PROXY_DEFAULTS = {
  connectTimeoutMs: 60_000,
  readTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
  keepaliveTimeoutMs: 60_000,
  keepaliveRequests: 1000,
  nextUpstream: ['error', 'timeout'] as NextUpstreamWhen[],
};

// ───────────────────────── tokens and blocks ─────────────────────────

interface Token {
  text: string;
  line: number;
  col: number;
  /** Length in the source (for "missing ;" positions). */
  len: number;
  quoted: boolean;
}

interface Directive {
  name: Token;
  args: Token[];
  block: Directive[] | undefined;
}

/** Split nginx syntax into tokens: words, quoted strings, `;`, `{`, `}`; `#` comments to the end of the line. */
function tokenize(src: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let col = 1;
  let i = 0;
  const advance = (c: string) => {
    if (c === '\n') {
      line++;
      col = 1;
    } else col++;
    i++;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      advance(c);
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') advance(src[i]!);
      continue;
    }
    const startLine = line;
    const startCol = col;
    const start = i;
    if (c === ';' || c === '{' || c === '}') {
      advance(c);
      out.push({ text: c, line: startLine, col: startCol, len: 1, quoted: false });
      continue;
    }
    if (c === '"' || c === "'") {
      let text = '';
      advance(c);
      for (;;) {
        if (i >= src.length) throw new ConfigError(file, startLine, startCol, `this ${c} is never closed`);
        const d = src[i]!;
        if (d === c) {
          advance(d);
          break;
        }
        if (d === '\\' && i + 1 < src.length) {
          advance(d);
          text += src[i]!;
          advance(src[i]!);
          continue;
        }
        text += d;
        advance(d);
      }
      out.push({ text, line: startLine, col: startCol, len: i - start, quoted: true });
      continue;
    }
    while (i < src.length && !/[\s;{}]/.test(src[i]!)) advance(src[i]!);
    out.push({ text: src.slice(start, i), line: startLine, col: startCol, len: i - start, quoted: false });
  }
  return out;
}

/** Every directive name this file knows (for the missing-";" hint). */
const DIRECTIVES = new Set([
  'http', 'upstream', 'server', 'least_conn', 'ip_hash', 'hash', 'keepalive', 'keepalive_timeout', 'keepalive_requests',
  'listen', 'server_name', 'location', 'proxy_pass', 'root', 'proxy_connect_timeout', 'proxy_read_timeout',
  'proxy_send_timeout', 'proxy_next_upstream', 'proxy_next_upstream_tries',
]);

/** Group tokens into directives and blocks; braces and semicolons are checked here. */
function parseBlocks(tokens: Token[], file: string): Directive[] {
  let pos = 0;
  const block = (opener: Token | undefined): Directive[] => {
    const list: Directive[] = [];
    for (;;) {
      const t = tokens[pos];
      if (t === undefined) {
        if (opener) throw new ConfigError(file, opener.line, opener.col, 'this "{" is never closed (missing "}")');
        return list;
      }
      if (t.text === '}' && !t.quoted) {
        if (!opener) throw new ConfigError(file, t.line, t.col, 'unexpected "}" (no block is open here)');
        pos++;
        return list;
      }
      if ((t.text === ';' || t.text === '{') && !t.quoted) throw new ConfigError(file, t.line, t.col, `unexpected "${t.text}" (a directive name should come first)`);
      pos++;
      const args: Token[] = [];
      for (;;) {
        const a = tokens[pos];
        const last = args[args.length - 1] ?? t;
        if (a === undefined) throw new ConfigError(file, last.line, last.col + last.len, `missing ";" after "${t.text}" (end of file reached)`);
        if (!a.quoted && a.text === ';') {
          pos++;
          list.push({ name: t, args, block: undefined });
          break;
        }
        if (!a.quoted && a.text === '{') {
          pos++;
          list.push({ name: t, args, block: block(a) });
          break;
        }
        if (!a.quoted && a.text === '}') throw new ConfigError(file, last.line, last.col + last.len, `missing ";" after "${t.text}"`);
        // A directive may span lines, but a known directive name starting a new line almost
        // certainly means the previous line lacks its ";".
        if (!a.quoted && a.line > last.line && DIRECTIVES.has(a.text)) {
          throw new ConfigError(file, last.line, last.col + last.len, `missing ";" after "${t.text}"`);
        }
        args.push(a);
        pos++;
      }
    }
  };
  return block(undefined);
}

// ───────────────────────── values ─────────────────────────

/** nginx time: a number with an optional unit (ms, s, m, h, d); no unit means seconds. */
export function parseTime(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)?$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!;
}

function parseIntIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,9}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** ADDR[:PORT] with an IPv4 address (port 80 when absent), or undefined. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m || !IPV4.test(m[1]!)) return undefined;
  const port = m[2] === undefined ? 80 : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

// ───────────────────────── directives ─────────────────────────

interface Ctx {
  file: string;
}

function fail(ctx: Ctx, t: Token, sentence: string): never {
  throw new ConfigError(ctx.file, t.line, t.col, sentence);
}

function expectArgs(ctx: Ctx, d: Directive, min: number, max: number): void {
  const n = d.args.length;
  if (n < min || n > max) {
    const want = min === max ? `${min} argument${min === 1 ? '' : 's'}` : `${min} to ${max} arguments`;
    fail(ctx, d.name, `"${d.name.text}" takes ${want}, not ${n}`);
  }
}

function expectNoBlock(ctx: Ctx, d: Directive): void {
  if (d.block) fail(ctx, d.name, `"${d.name.text}" takes no block (end it with ";")`);
}

function expectBlock(ctx: Ctx, d: Directive): Directive[] {
  if (!d.block) fail(ctx, d.name, `"${d.name.text}" needs a block: ${d.name.text} ... { ... }`);
  return d.block;
}

function time(ctx: Ctx, t: Token, what: string): number {
  const v = parseTime(t.text);
  if (v === undefined) fail(ctx, t, `${what} must be a time like 10s, 500ms or 1m (got "${t.text}")`);
  return v;
}

function parseServer(ctx: Ctx, d: Directive): PeerConfig & { token: Token } {
  expectNoBlock(ctx, d);
  if (d.args.length === 0) fail(ctx, d.name, '"server" needs an address, like server 10.77.0.1:8001;');
  const addrTok = d.args[0]!;
  const hp = parseHostPort(addrTok.text);
  if (!hp) fail(ctx, addrTok, `bad server address "${addrTok.text}": use an IPv4 address with an optional port, like 10.77.0.1:8001`);
  const peer: PeerConfig & { token: Token } = {
    name: addrTok.text,
    host: hp.host,
    port: hp.port,
    weight: 1,
    maxFails: DEFAULT_MAX_FAILS,
    failTimeoutMs: DEFAULT_FAIL_TIMEOUT_MS,
    backup: false,
    down: false,
    token: d.name,
  };
  for (const a of d.args.slice(1)) {
    const [key, value] = a.text.includes('=') ? [a.text.slice(0, a.text.indexOf('=')), a.text.slice(a.text.indexOf('=') + 1)] : [a.text, undefined];
    if (key === 'weight' && value !== undefined) {
      const w = parseIntIn(value, 1, 1000);
      if (w === undefined) fail(ctx, a, `weight must be an integer from 1 to 1000 (got "${value}")`);
      peer.weight = w;
    } else if (key === 'max_fails' && value !== undefined) {
      const n = parseIntIn(value, 0, 1000);
      if (n === undefined) fail(ctx, a, `max_fails must be an integer from 0 to 1000 (got "${value}")`);
      peer.maxFails = n;
    } else if (key === 'fail_timeout' && value !== undefined) {
      peer.failTimeoutMs = time(ctx, { ...a, col: a.col + key.length + 1, text: value }, 'fail_timeout');
    } else if (key === 'backup' && value === undefined) {
      peer.backup = true;
    } else if (key === 'down' && value === undefined) {
      peer.down = true;
    } else {
      fail(ctx, a, `unknown server parameter "${a.text}" (known: weight=N, max_fails=N, fail_timeout=T, backup, down)`);
    }
  }
  return peer;
}

function parseUpstream(ctx: Ctx, d: Directive): UpstreamConfig {
  expectArgs(ctx, d, 1, 1);
  const body = expectBlock(ctx, d);
  const up: UpstreamConfig = {
    name: d.args[0]!.text,
    method: 'round-robin',
    hashKey: '',
    servers: [],
    keepalive: 0,
    keepaliveTimeoutMs: PROXY_DEFAULTS.keepaliveTimeoutMs,
    keepaliveRequests: PROXY_DEFAULTS.keepaliveRequests,
  };
  let methodToken: Token | undefined;
  const backups: Token[] = [];
  const setMethod = (m: BalanceMethod, t: Token) => {
    if (methodToken) fail(ctx, t, `a second balancing method "${t.text}" (the first, "${methodToken.text}", is on line ${methodToken.line})`);
    methodToken = t;
    up.method = m;
  };
  for (const c of body) {
    switch (c.name.text) {
      case 'server': {
        const peer = parseServer(ctx, c);
        if (peer.backup) backups.push(c.name);
        const { token: _t, ...config } = peer;
        up.servers.push(config);
        break;
      }
      case 'least_conn':
      case 'ip_hash':
        expectNoBlock(ctx, c);
        expectArgs(ctx, c, 0, 0);
        setMethod(c.name.text === 'least_conn' ? 'least-conn' : 'ip-hash', c.name);
        break;
      case 'hash':
        expectNoBlock(ctx, c);
        expectArgs(ctx, c, 1, 2);
        if (c.args[1]?.text !== 'consistent') {
          fail(ctx, c.args[1] ?? c.name, 'only the consistent form is supported: hash $request_uri consistent;');
        }
        checkKey(ctx, c.args[0]!);
        setMethod('hash', c.name);
        up.hashKey = c.args[0]!.text;
        break;
      case 'keepalive': {
        expectNoBlock(ctx, c);
        expectArgs(ctx, c, 1, 1);
        const n = parseIntIn(c.args[0]!.text, 1, 100_000);
        if (n === undefined) fail(ctx, c.args[0]!, `keepalive must be a positive number of connections (got "${c.args[0]!.text}")`);
        up.keepalive = n;
        break;
      }
      case 'keepalive_timeout':
        expectNoBlock(ctx, c);
        expectArgs(ctx, c, 1, 1);
        up.keepaliveTimeoutMs = time(ctx, c.args[0]!, 'keepalive_timeout');
        break;
      case 'keepalive_requests': {
        expectNoBlock(ctx, c);
        expectArgs(ctx, c, 1, 1);
        const n = parseIntIn(c.args[0]!.text, 1, 1_000_000_000);
        if (n === undefined) fail(ctx, c.args[0]!, `keepalive_requests must be a positive integer (got "${c.args[0]!.text}")`);
        up.keepaliveRequests = n;
        break;
      }
      default:
        fail(ctx, c.name, `unknown directive "${c.name.text}" in upstream (known: server, least_conn, ip_hash, hash, keepalive, keepalive_timeout, keepalive_requests)`);
    }
  }
  if (up.servers.length === 0) fail(ctx, d.name, `upstream "${up.name}" has no server`);
  // nginx: "backup" cannot be used with the hash and ip_hash methods.
  if (backups.length > 0 && (up.method === 'hash' || up.method === 'ip-hash')) {
    fail(ctx, backups[0]!, `backup servers cannot be used with ${up.method === 'hash' ? 'hash' : 'ip_hash'} (as in nginx)`);
  }
  if (up.servers.every((s) => s.backup)) fail(ctx, d.name, `upstream "${up.name}" needs at least one server that is not a backup`);
  return up;
}

/** Hash keys: text with the variables we can evaluate. */
const KEY_VARIABLES = ['request_uri', 'uri', 'args', 'query_string', 'remote_addr', 'host', 'request_method'];

function checkKey(ctx: Ctx, t: Token): void {
  for (const m of t.text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g)) {
    if (!KEY_VARIABLES.includes(m[1]!)) fail(ctx, t, `unknown variable "$${m[1]}" in the hash key (known: ${KEY_VARIABLES.map((v) => '$' + v).join(', ')})`);
  }
}

interface ProxySettings {
  connectTimeoutMs: number;
  readTimeoutMs: number;
  sendTimeoutMs: number;
  nextUpstream: Set<NextUpstreamWhen>;
  nextUpstreamTries: number;
  root: string | undefined;
}

/** Directives allowed in both server and location (a location inherits the server's). */
function proxySetting(ctx: Ctx, c: Directive, s: ProxySettings): boolean {
  const one = () => {
    expectNoBlock(ctx, c);
    expectArgs(ctx, c, 1, 1);
    return c.args[0]!;
  };
  switch (c.name.text) {
    case 'proxy_connect_timeout':
      s.connectTimeoutMs = time(ctx, one(), 'proxy_connect_timeout');
      return true;
    case 'proxy_read_timeout':
      s.readTimeoutMs = time(ctx, one(), 'proxy_read_timeout');
      return true;
    case 'proxy_send_timeout':
      s.sendTimeoutMs = time(ctx, one(), 'proxy_send_timeout');
      return true;
    case 'proxy_next_upstream_tries': {
      const t = one();
      const n = parseIntIn(t.text, 0, 1000);
      if (n === undefined) fail(ctx, t, `proxy_next_upstream_tries must be an integer (0 = no limit), got "${t.text}"`);
      s.nextUpstreamTries = n;
      return true;
    }
    case 'proxy_next_upstream': {
      expectNoBlock(ctx, c);
      expectArgs(ctx, c, 1, NEXT_UPSTREAM.length);
      const set = new Set<NextUpstreamWhen>();
      for (const a of c.args) {
        if (!NEXT_UPSTREAM.includes(a.text)) fail(ctx, a, `unknown proxy_next_upstream condition "${a.text}" (known: ${NEXT_UPSTREAM.join(', ')})`);
        if (a.text === 'off') {
          if (c.args.length > 1) fail(ctx, a, '"off" cannot be combined with other proxy_next_upstream conditions');
        } else set.add(a.text as NextUpstreamWhen);
      }
      s.nextUpstream = set;
      return true;
    }
    case 'root':
      s.root = one().text;
      return true;
    default:
      return false;
  }
}

function parseLocation(ctx: Ctx, d: Directive, inherited: ProxySettings, upstreams: Map<string, UpstreamConfig>, implicit: Map<string, UpstreamConfig>): LocationConfig {
  const body = expectBlock(ctx, d);
  expectArgs(ctx, d, 1, 2);
  let exact = false;
  let pathTok = d.args[0]!;
  if (d.args.length === 2) {
    const mod = d.args[0]!.text;
    if (mod === '~' || mod === '~*') fail(ctx, d.args[0]!, 'regular-expression locations are not supported; use a prefix (location /app/) or an exact match (location = /x)');
    if (mod !== '=' && mod !== '^~') fail(ctx, d.args[0]!, `unknown location modifier "${mod}" (known: =, ^~)`);
    exact = mod === '=';
    pathTok = d.args[1]!;
  }
  if (!pathTok.text.startsWith('/')) fail(ctx, pathTok, `a location must start with "/" (got "${pathTok.text}")`);
  const s: ProxySettings = { ...inherited, nextUpstream: new Set(inherited.nextUpstream) };
  let pass: { token: Token; target: string } | undefined;
  let rootSetHere = false;
  for (const c of body) {
    if (c.name.text === 'proxy_pass') {
      expectNoBlock(ctx, c);
      expectArgs(ctx, c, 1, 1);
      pass = { token: c.args[0]!, target: c.args[0]!.text };
      continue;
    }
    if (c.name.text === 'root') rootSetHere = true;
    if (proxySetting(ctx, c, s)) continue;
    if (c.name.text === 'location') fail(ctx, c.name, 'nested locations are not supported');
    fail(ctx, c.name, `unknown directive "${c.name.text}" in location (known: proxy_pass, root, proxy_connect_timeout, proxy_read_timeout, proxy_send_timeout, proxy_next_upstream, proxy_next_upstream_tries)`);
  }
  let proxy: ProxyPassConfig | undefined;
  if (pass) {
    if (rootSetHere) fail(ctx, d.name, `location ${pathTok.text} has both proxy_pass and root: it either proxies or serves files`);
    const m = /^http:\/\/([^/?#]+)(\/[^?#]*)?$/.exec(pass.target);
    if (!m) fail(ctx, pass.token, `proxy_pass needs http://UPSTREAM or http://ADDR:PORT, optionally with a path (got "${pass.target}")`);
    const host = m[1]!;
    let upstream = upstreams.get(host);
    if (!upstream) {
      const hp = parseHostPort(host);
      if (!hp) fail(ctx, pass.token, `proxy_pass names "${host}", which is neither an upstream block nor an IPv4 address with a port`);
      upstream = implicit.get(host) ?? {
        name: host,
        method: 'round-robin',
        hashKey: '',
        servers: [{ name: host, host: hp.host, port: hp.port, weight: 1, maxFails: DEFAULT_MAX_FAILS, failTimeoutMs: DEFAULT_FAIL_TIMEOUT_MS, backup: false, down: false }],
        keepalive: 0,
        keepaliveTimeoutMs: PROXY_DEFAULTS.keepaliveTimeoutMs,
        keepaliveRequests: PROXY_DEFAULTS.keepaliveRequests,
      };
      implicit.set(host, upstream);
    }
    proxy = {
      upstream: upstream.name,
      uri: m[2],
      proxyHost: host,
      connectTimeoutMs: s.connectTimeoutMs,
      readTimeoutMs: s.readTimeoutMs,
      sendTimeoutMs: s.sendTimeoutMs,
      nextUpstream: s.nextUpstream,
      nextUpstreamTries: s.nextUpstreamTries,
    };
  } else if (s.root === undefined) {
    fail(ctx, d.name, `location ${pathTok.text} needs proxy_pass or root`);
  }
  return { path: pathTok.text, exact, proxy, root: proxy ? undefined : s.root, line: d.name.line, col: d.name.col };
}

/** Parse a configuration file's text. Throws ConfigError (file:line:col: sentence). */
export function parseProxyConfig(src: string, file: string): ProxyConfig {
  const ctx: Ctx = { file };
  const top = parseBlocks(tokenize(src, file), file);
  // `http { ... }` around everything is allowed (an nginx.conf excerpt).
  let items = top;
  if (top.length === 1 && top[0]!.name.text === 'http') {
    expectArgs(ctx, top[0]!, 0, 0);
    items = expectBlock(ctx, top[0]!);
  }
  const upstreams = new Map<string, UpstreamConfig>();
  const servers: Directive[] = [];
  for (const d of items) {
    if (d.name.text === 'upstream') {
      const up = parseUpstream(ctx, d);
      if (upstreams.has(up.name)) fail(ctx, d.args[0]!, `a second upstream named "${up.name}"`);
      upstreams.set(up.name, up);
    } else if (d.name.text === 'server') {
      expectArgs(ctx, d, 0, 0);
      expectBlock(ctx, d);
      if (servers.length > 0) fail(ctx, d.name, 'only one server block is supported (netstack answers on one address and port)');
      servers.push(d);
    } else if (d.name.text === 'http') {
      fail(ctx, d.name, '"http" must enclose the whole file, or be left out');
    } else {
      fail(ctx, d.name, `unknown directive "${d.name.text}" (known here: upstream, server)`);
    }
  }
  if (servers.length === 0) throw new ConfigError(file, 1, 1, 'no server block: add server { location / { proxy_pass http://NAME; } }');
  const server = servers[0]!;
  const settings: ProxySettings = {
    connectTimeoutMs: PROXY_DEFAULTS.connectTimeoutMs,
    readTimeoutMs: PROXY_DEFAULTS.readTimeoutMs,
    sendTimeoutMs: PROXY_DEFAULTS.sendTimeoutMs,
    nextUpstream: new Set(PROXY_DEFAULTS.nextUpstream),
    nextUpstreamTries: 0,
    root: undefined,
  };
  let listen: number | undefined;
  const locationDirectives: Directive[] = [];
  for (const c of server.block!) {
    if (c.name.text === 'listen') {
      expectNoBlock(ctx, c);
      expectArgs(ctx, c, 1, 1);
      const port = parseIntIn(c.args[0]!.text, 1, 65535);
      if (port === undefined) fail(ctx, c.args[0]!, `listen takes a port from 1 to 65535 (netstack answers on its --addr), got "${c.args[0]!.text}"`);
      listen = port;
    } else if (c.name.text === 'server_name') {
      // One server block answers every name: accepted so nginx excerpts load, and ignored.
      expectNoBlock(ctx, c);
    } else if (c.name.text === 'location') {
      locationDirectives.push(c);
    } else if (!proxySetting(ctx, c, settings)) {
      fail(ctx, c.name, `unknown directive "${c.name.text}" in server (known: listen, server_name, location, root, proxy_*_timeout, proxy_next_upstream)`);
    }
  }
  const implicit = new Map<string, UpstreamConfig>();
  const locations: LocationConfig[] = [];
  for (const c of locationDirectives) {
    const loc = parseLocation(ctx, c, settings, upstreams, implicit);
    if (locations.some((l) => l.path === loc.path && l.exact === loc.exact)) fail(ctx, c.name, `a second location ${loc.exact ? '= ' : ''}${loc.path}`);
    locations.push(loc);
  }
  if (locations.length === 0) fail(ctx, server.name, 'the server block has no location');
  for (const [name, up] of implicit) upstreams.set(name, up);
  return { file, listen, upstreams, locations };
}

/** The shorthand `--balance` names and the method each means. */
export const BALANCE_FLAGS: Record<string, BalanceMethod> = {
  'round-robin': 'round-robin',
  'least-conn': 'least-conn',
  'ip-hash': 'ip-hash',
  'url-hash': 'hash',
};

/**
 * `--upstream ADDR[:PORT][,weight=N][,max_fails=N][,fail_timeout=T][,backup]` (repeatable) and
 * `--balance`: `location / { proxy_pass http://upstream; }` over those servers. Errors are
 * thrown as plain Errors with one sentence naming the flag.
 */
export function shorthandConfig(specs: string[], balance: string, keepalive: number): ProxyConfig {
  const method = BALANCE_FLAGS[balance];
  if (!method) throw new Error(`--balance must be one of ${Object.keys(BALANCE_FLAGS).join(', ')} (got "${balance}")`);
  // The same rules as the file: build it, and let the file parser judge each server.
  const lines: string[] = [];
  for (const spec of specs) {
    if (/[;{}#"'\s]/.test(spec)) throw new Error(`--upstream "${spec}" has a character that is not allowed (use ADDR:PORT[,weight=N][,backup]...)`);
    lines.push(`server ${spec.split(',').join(' ')};`);
  }
  const directive = method === 'least-conn' ? 'least_conn;' : method === 'ip-hash' ? 'ip_hash;' : method === 'hash' ? 'hash $request_uri consistent;' : '';
  const text = `upstream upstream {\n${directive}\n${lines.join('\n')}\n${keepalive > 0 ? `keepalive ${keepalive};` : ''}\n}\nserver { location / { proxy_pass http://upstream; } }\n`;
  try {
    return parseProxyConfig(text, '--upstream');
  } catch (e) {
    if (e instanceof ConfigError) {
      const spec = specs[e.line - 3];
      throw new Error(spec !== undefined ? `--upstream ${spec}: ${e.sentence}` : `--balance ${balance}: ${e.sentence}`);
    }
    throw e;
  }
}
