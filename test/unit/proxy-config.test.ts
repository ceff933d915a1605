/** The nginx-subset configuration: what a valid file means, and every error with its line:col. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseProxyConfig, parseTime, shorthandConfig } from '../../src/proxy/config.js';

const EXAMPLE = `# the README's example
upstream app {
    # balancing: none (= smooth weighted round robin)
    server 10.77.0.1:8001 weight=3 max_fails=2 fail_timeout=10s;
    server 10.77.0.1:8002;
    server 10.77.0.1:8003 backup;
    keepalive 16;                 # idle upstream connections kept
}
server {
    listen 80;
    location /app/  { proxy_pass http://app; proxy_connect_timeout 2s; proxy_read_timeout 30s; }
    location /static/ { root /srv/www; }
}
`;

function errorOf(text: string): string {
  try {
    parseProxyConfig(text, 'test.conf');
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('no error');
}

describe('a valid configuration', () => {
  it("reads a full configuration (upstream with weights, max_fails, backup, keepalive; server with proxy and root locations) completely", () => {
    const c = parseProxyConfig(EXAMPLE, 'ex.conf');
    expect(c.listen).toBe(80);
    const app = c.upstreams.get('app')!;
    expect(app.method).toBe('round-robin');
    expect(app.keepalive).toBe(16);
    expect(app.servers).toEqual([
      { name: '10.77.0.1:8001', host: '10.77.0.1', port: 8001, weight: 3, maxFails: 2, failTimeoutMs: 10_000, backup: false, down: false },
      { name: '10.77.0.1:8002', host: '10.77.0.1', port: 8002, weight: 1, maxFails: 1, failTimeoutMs: 10_000, backup: false, down: false },
      { name: '10.77.0.1:8003', host: '10.77.0.1', port: 8003, weight: 1, maxFails: 1, failTimeoutMs: 10_000, backup: true, down: false },
    ]);
    expect(c.locations).toHaveLength(2);
    const [appLoc, staticLoc] = c.locations;
    expect(appLoc).toMatchObject({ path: '/app/', exact: false, root: undefined });
    expect(appLoc!.proxy).toMatchObject({ upstream: 'app', uri: undefined, proxyHost: 'app', connectTimeoutMs: 2000, readTimeoutMs: 30_000, sendTimeoutMs: 60_000, nextUpstreamTries: 0 });
    expect([...appLoc!.proxy!.nextUpstream].sort()).toEqual(['error', 'timeout']);
    expect(staticLoc).toMatchObject({ path: '/static/', root: '/srv/www', proxy: undefined });
  });

  it('each balancing method, an http{} wrapper, quoted strings, exact locations and a proxy_pass with a path', () => {
    const c = parseProxyConfig(
      `http {
        upstream a { least_conn; server 10.0.0.1; }
        upstream b { ip_hash; server 10.0.0.2:81 down; server 10.0.0.3:82; }
        upstream c { hash "$request_uri" consistent; server 10.0.0.4:83; keepalive_timeout 500ms; keepalive_requests 10; }
        server {
          proxy_read_timeout 1m;
          proxy_next_upstream error timeout http_502 non_idempotent;
          location = /exact { proxy_pass http://a; }
          location / { proxy_pass http://b/v2/; }
          location ^~ /c/ { proxy_pass http://c; proxy_next_upstream off; }
          location /direct/ { proxy_pass http://10.0.0.9:8080; }
        }
      }`,
      'x.conf',
    );
    expect(c.upstreams.get('a')!.method).toBe('least-conn');
    expect(c.upstreams.get('a')!.servers[0]!.port).toBe(80);
    expect(c.upstreams.get('b')!.method).toBe('ip-hash');
    expect(c.upstreams.get('b')!.servers[0]!.down).toBe(true);
    expect(c.upstreams.get('c')).toMatchObject({ method: 'hash', hashKey: '$request_uri', keepaliveTimeoutMs: 500, keepaliveRequests: 10 });
    expect(c.locations[0]).toMatchObject({ path: '/exact', exact: true });
    expect(c.locations[1]!.proxy).toMatchObject({ upstream: 'b', uri: '/v2/', readTimeoutMs: 60_000 });
    expect([...c.locations[1]!.proxy!.nextUpstream].sort()).toEqual(['error', 'http_502', 'non_idempotent', 'timeout']);
    expect(c.locations[2]!.proxy!.nextUpstream.size).toBe(0);
    // An address in proxy_pass is an upstream of one server.
    expect(c.upstreams.get('10.0.0.9:8080')!.servers).toHaveLength(1);
    expect(c.listen).toBeUndefined();
  });

  it('times: units as nginx, no unit means seconds', () => {
    expect(parseTime('10')).toBe(10_000);
    expect(parseTime('250ms')).toBe(250);
    expect(parseTime('2m')).toBe(120_000);
    expect(parseTime('1h')).toBe(3_600_000);
    expect(parseTime('1.5s')).toBeUndefined();
    expect(parseTime('s')).toBeUndefined();
  });
});

describe('errors name the file, line and column', () => {
  it.each([
    ['unknown directive', 'upstream a { server 10.0.0.1; }\nserver {\n  location / { proxy_pass http://a; }\n  gzip on;\n}', '4:3: unknown directive "gzip" in server'],
    ['unknown directive in upstream', 'upstream a {\n  server 10.0.0.1;\n  zone x 64k;\n}', '3:3: unknown directive "zone" in upstream'],
    ['unknown top-level directive', 'worker_processes 1;', '1:1: unknown directive "worker_processes"'],
    ['bad address', 'upstream a {\n  server backend.example:80;\n}', '2:10: bad server address "backend.example:80"'],
    ['bad port', 'upstream a {\n  server 10.0.0.1:70000;\n}', '2:10: bad server address "10.0.0.1:70000"'],
    ['weight 0', 'upstream a {\n  server 10.0.0.1 weight=0;\n}', '2:19: weight must be an integer from 1 to 1000 (got "0")'],
    ['negative weight', 'upstream a {\n  server 10.0.0.1 weight=-2;\n}', '2:19: weight must be an integer from 1 to 1000 (got "-2")'],
    ['backup with hash', 'upstream a {\n  hash $request_uri consistent;\n  server 10.0.0.1;\n  server 10.0.0.2 backup;\n}', '4:3: backup servers cannot be used with hash'],
    ['backup with ip_hash', 'upstream a {\n  server 10.0.0.2 backup;\n  server 10.0.0.1;\n  ip_hash;\n}', '2:3: backup servers cannot be used with ip_hash'],
    ['missing ;', 'upstream a {\n  server 10.0.0.1\n  keepalive 4;\n}', '2:18: missing ";" after "server"'],
    ['missing ; before }', 'upstream a {\n  server 10.0.0.1 }', '2:18: missing ";" after "server"'],
    ['missing ; at the end', 'upstream a { server 10.0.0.1; }\nserver { location / { proxy_pass http://a; } }\nuser', '3:5: missing ";" after "user"'],
    ['an unclosed brace', 'upstream a {\n  server 10.0.0.1;\n', '1:12: this "{" is never closed'],
    ['an extra closing brace', 'upstream a {\n  server 10.0.0.1;\n}\n}', '4:1: unexpected "}"'],
    ['an unclosed quote', 'upstream a { hash "$uri consistent; }', '1:19: this " is never closed'],
    ['bad server parameter', 'upstream a { server 10.0.0.1 slow_start=10s; }', '1:30: unknown server parameter "slow_start=10s"'],
    ['bad fail_timeout', 'upstream a { server 10.0.0.1 fail_timeout=soon; }', '1:43: fail_timeout must be a time'],
    ['an empty upstream', 'upstream a {\n}', '1:1: upstream "a" has no server'],
    ['only backups', 'upstream a { server 10.0.0.1 backup; }', '1:1: upstream "a" needs at least one server that is not a backup'],
    ['two methods', 'upstream a { least_conn; ip_hash; server 10.0.0.1; }', '1:26: a second balancing method "ip_hash"'],
    ['hash without consistent', 'upstream a { hash $request_uri; server 10.0.0.1; }', '1:14: only the consistent form is supported'],
    ['unknown hash variable', 'upstream a { hash $cookie_x consistent; server 10.0.0.1; }', '1:19: unknown variable "$cookie_x"'],
    ['proxy_pass to nothing', 'server {\n  location / { proxy_pass http://nowhere; }\n}', '2:27: proxy_pass names "nowhere"'],
    ['proxy_pass https', 'server { location / { proxy_pass https://10.0.0.1; } }', '1:34: proxy_pass needs http://UPSTREAM'],
    ['regex location', 'server { location ~ \\.php$ { root /tmp; } }', '1:19: regular-expression locations are not supported'],
    ['location without handler', 'server {\n  location /x/ { }\n}', '2:3: location /x/ needs proxy_pass or root'],
    ['proxy and root together', 'upstream a { server 10.0.0.1; }\nserver { location / { proxy_pass http://a; root /tmp; } }', '2:10: location / has both proxy_pass and root'],
    ['duplicate location', 'server { location / { root /a; } location / { root /b; } }', '1:34: a second location /'],
    ['two server blocks', 'server { location / { root /a; } }\nserver { location / { root /a; } }', '2:1: only one server block is supported'],
    ['no server block', 'upstream a { server 10.0.0.1; }', '1:1: no server block'],
    ['bad listen', 'server { listen 10.0.0.1:80; location / { root /a; } }', '1:17: listen takes a port'],
    ['bad timeout', 'server { proxy_read_timeout forever; location / { root /a; } }', '1:29: proxy_read_timeout must be a time'],
    ['bad next_upstream', 'server { proxy_next_upstream error sometimes; location / { root /a; } }', '1:36: unknown proxy_next_upstream condition "sometimes"'],
    ['wrong argument count', 'upstream a { keepalive; server 10.0.0.1; }', '1:14: "keepalive" takes 1 argument, not 0'],
    ['a block where none belongs', 'upstream a { server 10.0.0.1 { } }', '1:14: "server" takes no block'],
  ])('%s', (_what, text, expected) => {
    const msg = errorOf(text);
    expect(msg.startsWith('test.conf:')).toBe(true);
    expect(msg.slice('test.conf:'.length)).toContain(expected);
    expect(msg).not.toContain('\n');
  });
});

describe('the --upstream/--balance shorthand', () => {
  it('means location / over those servers, with the method', () => {
    const c = shorthandConfig(['10.77.0.1:8001', '10.77.0.1:8002,weight=3', '10.77.0.1:8003,backup'], 'round-robin', 0);
    const up = [...c.upstreams.values()][0]!;
    expect(up.servers.map((s) => [s.name, s.weight, s.backup])).toEqual([
      ['10.77.0.1:8001', 1, false],
      ['10.77.0.1:8002', 3, false],
      ['10.77.0.1:8003', 1, true],
    ]);
    expect(c.locations).toHaveLength(1);
    expect(c.locations[0]).toMatchObject({ path: '/', proxy: { upstream: up.name } });
    expect([...shorthandConfig(['10.0.0.1:1'], 'url-hash', 8).upstreams.values()][0]).toMatchObject({ method: 'hash', hashKey: '$request_uri', keepalive: 8 });
    expect([...shorthandConfig(['10.0.0.1:1'], 'least-conn', 0).upstreams.values()][0]!.method).toBe('least-conn');
    expect([...shorthandConfig(['10.0.0.1:1'], 'ip-hash', 0).upstreams.values()][0]!.method).toBe('ip-hash');
  });

  it('errors name the flag and the value', () => {
    expect(() => shorthandConfig(['10.0.0.1:80,weight=0'], 'round-robin', 0)).toThrow('--upstream 10.0.0.1:80,weight=0: weight must be an integer from 1 to 1000 (got "0")');
    expect(() => shorthandConfig(['example.com'], 'round-robin', 0)).toThrow('--upstream example.com: bad server address');
    expect(() => shorthandConfig(['10.0.0.1', '10.0.0.2,backup'], 'url-hash', 0)).toThrow('--upstream 10.0.0.2,backup: backup servers cannot be used with hash');
    expect(() => shorthandConfig(['10.0.0.1'], 'random', 0)).toThrow('--balance must be one of round-robin, least-conn, ip-hash, url-hash (got "random")');
    expect(() => shorthandConfig(['10.0.0.1;x'], 'round-robin', 0)).toThrow('has a character that is not allowed');
  });
});
