/**
 * The web application of `netstack up --config` / `--upstream`: requests go to the location
 * with the longest matching prefix (an exact `location = /x` first), as nginx; a location
 * proxies (proxy_pass) or serves files (root, with the static-file code of src/http). The
 * built-in routes live under /_netstack/, and they show the upstreams. One access-log line per
 * request at info.
 */
import type { Logger } from 'pino';
import type { Clock } from '../runtime/clock.js';
import { escapeHtml, labelValue } from '../http/routes.js';
import type { Handler, HttpRequest, HttpResponse } from '../http/server.js';
import { createStaticHandler } from '../http/static.js';
import type { LocationConfig, ProxyConfig } from './config.js';
import type { Connector, ProxyLogInfo } from './proxy.js';
import { Proxy } from './proxy.js';
import type { UpstreamPeerInfo } from './upstream.js';
import { UpstreamGroup } from './upstream.js';

/** Where the built-in routes go when a proxy owns the paths. */
export const BUILTIN_BASE = '/_netstack';

/** Proxied bodies stream, so their limit is about abuse, not memory (nginx's client_max_body_size is 1 MiB by default). */
export const PROXY_MAX_BODY = 2 ** 40;

/** The location for a path: an exact match, else the longest prefix (nginx's rules without regexes). */
export function matchLocation(locations: readonly LocationConfig[], path: string): LocationConfig | undefined {
  let best: LocationConfig | undefined;
  for (const l of locations) {
    if (l.exact) {
      if (l.path === path) return l;
      continue;
    }
    if (path.startsWith(l.path) && (!best || l.path.length > best.path.length)) best = l;
  }
  return best;
}

export interface ProxyApp {
  handler: Handler;
  proxy: Proxy;
  groups: Map<string, UpstreamGroup>;
  /** The upstreams as rows: for the status page and /metrics. */
  describe(): UpstreamPeerInfo[];
  /** An HTML section and Prometheus families for the built-in pages. */
  extra: { html(): string; metrics(): string };
  close(): void;
}

export function createProxyApp(opts: { config: ProxyConfig; connect: Connector; clock: Clock; builtins: Handler; logger?: Logger }): ProxyApp {
  const { config, clock, logger } = opts;
  const groups = new Map<string, UpstreamGroup>();
  for (const [name, up] of config.upstreams) groups.set(name, new UpstreamGroup(up, clock));
  const proxy = new Proxy(groups, opts.connect, clock, logger);
  const statics = new Map<LocationConfig, Handler>();
  for (const l of config.locations) if (l.root !== undefined) statics.set(l, createStaticHandler(l.root));
  const describe = () => [...groups.values()].flatMap((g) => g.describe(clock.now()));

  const route = async (req: HttpRequest, res: HttpResponse, info: ProxyLogInfo): Promise<void> => {
    if (req.path === BUILTIN_BASE || req.path.startsWith(`${BUILTIN_BASE}/`)) return opts.builtins(req, res);
    const loc = matchLocation(config.locations, req.path);
    if (!loc) {
      res.status = 404;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      return res.end(`not found: no location matches ${req.path}\n`);
    }
    if (loc.proxy) return proxy.handle(req, res, loc, info);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status = 405;
      res.setHeader('Allow', 'GET, HEAD');
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      return res.end('method not allowed; use GET or HEAD\n');
    }
    return statics.get(loc)!(req, res);
  };

  const handler: Handler = async (req, res) => {
    const started = clock.now();
    const info: ProxyLogInfo = { upstream: '-', tries: 0 };
    const counted = countBytes(res);
    try {
      await route(req, counted.res, info);
    } finally {
      if (logger?.isLevelEnabled('info')) {
        logger.info(
          {
            client: req.remoteAddress,
            method: req.method,
            uri: req.target,
            upstream: info.upstream,
            tries: info.tries,
            status: res.status,
            bytes: counted.bytes(),
            ms: Math.round((clock.now() - started) * 10) / 10,
          },
          'access',
        );
      }
    }
  };
  handler.maxBodyBytes = (head) => {
    const path = head.target.split('?')[0]!;
    if (path.startsWith(`${BUILTIN_BASE}/`)) return opts.builtins.maxBodyBytes?.(head) ?? 64 * 1024;
    return matchLocation(config.locations, path)?.proxy ? PROXY_MAX_BODY : 64 * 1024;
  };

  return {
    handler,
    proxy,
    groups,
    describe,
    extra: { html: () => upstreamsHtml(describe()), metrics: () => upstreamsMetrics(describe()) },
    close: () => {
      for (const g of groups.values()) g.closeIdle();
    },
  };
}

/** The response with its body bytes counted (for the access log). */
function countBytes(res: HttpResponse): { res: HttpResponse; bytes: () => number } {
  let n = 0;
  const size = (c: Uint8Array | string | undefined) => (c === undefined ? 0 : typeof c === 'string' ? Buffer.byteLength(c) : c.length);
  const wrapped: HttpResponse = {
    get status() {
      return res.status;
    },
    set status(v: number) {
      res.status = v;
    },
    get headersSent() {
      return res.headersSent;
    },
    setHeader: (name, value) => res.setHeader(name, value),
    appendHeader: (name, value) => res.appendHeader(name, value),
    write: (chunk) => {
      n += size(chunk);
      return res.write(chunk);
    },
    end: (chunk) => {
      n += size(chunk);
      res.end(chunk);
    },
  };
  return { res: wrapped, bytes: () => n };
}

const COLUMNS: Array<keyof UpstreamPeerInfo> = ['upstream', 'server', 'state', 'weight', 'currentWeight', 'effectiveWeight', 'active', 'requests', 'failures'];

export function upstreamsHtml(rows: UpstreamPeerInfo[]): string {
  const head = `<tr>${COLUMNS.map((c) => `<th>${c}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${COLUMNS.map((c) => `<td>${escapeHtml(String(r[c]))}</td>`).join('')}</tr>`);
  return ['<h2>Upstreams</h2>', '<table>', head, ...body, '</table>'].join('\n');
}

export function upstreamsMetrics(rows: UpstreamPeerInfo[]): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string, value: (r: UpstreamPeerInfo) => number) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const r of rows) lines.push(`${name}{upstream="${labelValue(r.upstream)}",server="${labelValue(r.server)}"} ${value(r)}`);
  };
  family('netstack_upstream_up', 'gauge', 'Whether the server can be chosen (1), or is down or failed (0).', (r) => (r.state === 'up' || r.state === 'backup' ? 1 : 0));
  family('netstack_upstream_backup', 'gauge', 'Whether the server is a backup.', (r) => (r.state === 'backup' ? 1 : 0));
  family('netstack_upstream_weight', 'gauge', 'Configured weight.', (r) => r.weight);
  family('netstack_upstream_current_weight', 'gauge', 'Smooth weighted round robin current weight.', (r) => r.currentWeight);
  family('netstack_upstream_active_requests', 'gauge', 'Requests in progress.', (r) => r.active);
  family('netstack_upstream_requests_total', 'counter', 'Attempts sent to the server.', (r) => r.requests);
  family('netstack_upstream_failures_total', 'counter', 'Failed attempts (connect error, timeout, invalid response, retried status).', (r) => r.failures);
  return lines.join('\n') + '\n';
}
