/** The proxy flags of `netstack up`: every mistake is one sentence (with file:line:col for the file). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadProxyConfig } from '../../src/cli/proxy.js';
import { UP_DEFAULTS, validateUpArgs } from '../../src/cli/up.js';

const dir = mkdtempSync(join(tmpdir(), 'netstack-cli-proxy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const base = { ...UP_DEFAULTS, mtu: '1500', port: '80' };

describe('netstack up --config / --upstream', () => {
  it('a valid file gives the proxy and its listen port; a root location is resolved to a real directory', () => {
    const www = join(dir, 'www');
    mkdirSync(www, { recursive: true });
    const conf = file('ok.conf', `upstream app { server 10.77.0.1:8001; }\nserver { listen 8080; location / { proxy_pass http://app; } location /s/ { root ${www}/../www; } }\n`);
    const cfg = validateUpArgs({ ...base, config: conf });
    expect(cfg.port).toBe(8080);
    expect(cfg.proxy!.upstreams.get('app')!.servers).toHaveLength(1);
    expect(cfg.proxy!.locations[1]!.root).toBe(www);
  });

  it('without a listen directive the port is --port', () => {
    const conf = file('nolisten.conf', 'server { location / { proxy_pass http://10.77.0.1:8001; } }\n');
    expect(validateUpArgs({ ...base, port: '81', config: conf }).port).toBe(81);
  });

  it.each([
    ['an error in the file', { config: 'bad.conf' }, /bad\.conf:2:22: weight must be an integer from 1 to 1000 \(got "0"\)$/],
    ['a missing file', { config: join(dir, 'nope.conf') }, /^cannot read --config .*nope\.conf: no such file$/],
    ['a directory', { config: dir }, /^cannot read --config .*: it is a directory$/],
    ['a root that does not exist', { config: 'noroot.conf' }, /noroot\.conf:1:10: root "\/definitely\/not\/here" of location \/ is not an existing directory$/],
    ['both --config and --upstream', { config: 'bad.conf', upstream: ['10.0.0.1:80'] }, /^use --config FILE or --upstream, not both$/],
    ['--balance without --upstream', { balance: 'least-conn' }, /^--balance needs at least one --upstream$/],
    ['--balance with --config', { config: 'bad.conf', balance: 'ip-hash' }, /^--balance goes with --upstream/],
    ['an unknown --balance', { upstream: ['10.0.0.1:80'], balance: 'fastest' }, /^--balance must be one of round-robin, least-conn, ip-hash, url-hash \(got "fastest"\)$/],
    ['a bad --upstream', { upstream: ['10.0.0.1:80', 'backend:80'] }, /^--upstream backend:80: bad server address "backend:80"/],
    ['--root with a proxy', { upstream: ['10.0.0.1:80'], root: '/tmp' }, /^--root cannot be combined with a proxy/],
  ])('%s is one sentence', (_what, flags, message) => {
    file('bad.conf', 'upstream app {\n  server 10.0.0.1:80 weight=0;\n}\n');
    file('noroot.conf', 'server { location / { root /definitely/not/here; } }\n');
    const f = { ...flags } as { config?: string };
    if (f.config && !f.config.startsWith('/')) f.config = join(dir, f.config);
    let msg = '';
    try {
      loadProxyConfig(f);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(message);
    expect(msg).not.toContain('\n');
  });

  it('no proxy flags: no proxy', () => {
    expect(loadProxyConfig({})).toBeUndefined();
  });
});
