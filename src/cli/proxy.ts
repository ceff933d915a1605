/**
 * `netstack up --config FILE` and `--upstream/--balance`: read and check the proxy
 * configuration before anything is set up, turning every problem into one sentence (with
 * file:line:col for the file) for main.ts to print.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import type { ProxyConfig } from '../proxy/config.js';
import { ConfigError, parseProxyConfig, shorthandConfig } from '../proxy/config.js';

/** Idle upstream connections kept by the --upstream shorthand (`keepalive 16;` in a file). */
export const SHORTHAND_KEEPALIVE = 16;

export interface ProxyArgs {
  config?: string | undefined;
  upstream?: string[] | undefined;
  balance?: string | undefined;
  root?: string | undefined;
}

/** The proxy configuration the flags ask for, or undefined for none. Throws Error with one sentence. */
export function loadProxyConfig(a: ProxyArgs): ProxyConfig | undefined {
  const upstreams = a.upstream ?? [];
  if (a.config !== undefined && upstreams.length > 0) throw new Error('use --config FILE or --upstream, not both');
  if (a.balance !== undefined && upstreams.length === 0) {
    throw new Error(a.config !== undefined ? '--balance goes with --upstream; in a --config file, name the method in the upstream block' : '--balance needs at least one --upstream');
  }
  if (a.config === undefined && upstreams.length === 0) return undefined;
  if (a.root !== undefined) throw new Error('--root cannot be combined with a proxy: add a location with root to the --config file instead');
  if (upstreams.length > 0) return shorthandConfig(upstreams, a.balance ?? 'round-robin', SHORTHAND_KEEPALIVE);
  const file = a.config!;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read --config ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message}`);
  }
  let config: ProxyConfig;
  try {
    config = parseProxyConfig(text, file);
  } catch (e) {
    if (e instanceof ConfigError) throw new Error(e.message);
    throw e;
  }
  for (const loc of config.locations) {
    if (loc.root === undefined) continue;
    try {
      const real = realpathSync(loc.root);
      if (!statSync(real).isDirectory()) throw new Error('not a directory');
      loc.root = real;
    } catch {
      throw new Error(`${file}:${loc.line}:${loc.col}: root "${loc.root}" of location ${loc.path} is not an existing directory`);
    }
  }
  return config;
}
