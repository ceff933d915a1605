/**
 * `netstack up`: create a TUN device, give the kernel its side of the link, and run the
 * stack on the other side until SIGINT/SIGTERM. No protocol logic here: this file checks
 * options, turns environment errors into one clear sentence, and wires the parts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Argv } from 'yargs';
import { formatIpv4, inSubnet, parseCidr, parseIpv4, prefixMask } from '../ip/addr.js';
import type { Ipv4Addr } from '../ip/addr.js';
import { formatMac, isGroupMac, isZeroMac, localMac, parseMac } from '../link/ethernet.js';
import type { Mac } from '../link/ethernet.js';
import type { Link } from '../link/link.js';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapWriter, wrapLink } from '../link/pcap.js';
import { CONGESTION_CONTROLS, type CongestionControlName } from '../tcp/congestion/index.js';
import { TunLink } from '../link/tun.js';
import { LOG_LEVELS, createLogger } from '../runtime/log.js';
import type { Logger } from '../runtime/log.js';
import { Stack } from '../stack.js';
import { DEFAULT_TCP_LIMITS } from '../tcp/limits.js';
import type { TcpLimits } from '../tcp/limits.js';
import { allowNetworks, parseNetwork } from '../http/access.js';
import type { Network } from '../http/access.js';
import { createNetstackApp } from '../http/routes.js';
import type { StackView } from '../http/routes.js';
import { HttpServer } from '../http/server.js';
import { DnsService } from '../dns/service.js';
import { defaultZones } from '../dns/zone.js';
import type { Zone } from '../dns/zone.js';
import { ZoneFileError, parseZoneFile } from '../dns/zonefile.js';
import { createLiveView } from '../web/live.js';
import { Watcher } from '../web/watch.js';
import type { ProxyConfig } from '../proxy/config.js';
import { BUILTIN_BASE, createProxyApp } from '../proxy/app.js';
import type { ProxyApp } from '../proxy/app.js';
import { BALANCE_FLAGS } from '../proxy/config.js';
import { loadProxyConfig } from './proxy.js';

/** An error meant for the user: main prints its message as one line and exits 1. */
export class CliError extends Error {
  override name = 'CliError';
}

/** The options as they come from the command line. */
export interface UpArgs {
  dev: string;
  host: string;
  addr: string;
  /** Numbers stay text until validateUpArgs, so an error can quote what was typed. */
  mtu: string | number;
  port: string | number;
  pcap?: string | undefined;
  root?: string | undefined;
  /** --admin, given any number of times. */
  admin?: string | string[] | undefined;
  /** TCP's caps; yargs fills in the defaults (DEFAULT_TCP_LIMITS), and so does validateUpArgs. */
  memLimit?: string | number | undefined;
  maxConnections?: string | number | undefined;
  maxTimeWait?: string | number | undefined;
  maxOrphans?: string | number | undefined;
  orphanRetries?: string | number | undefined;
  synCookies?: boolean | undefined;
  logLevel: string;
  dns?: boolean | undefined;
  dnsZone?: string[] | string | undefined;
  live?: boolean;
  config?: string | undefined;
  upstream?: string[] | undefined;
  balance?: string | undefined;
  tap?: boolean | undefined;
  mac?: string | undefined;
  cc: string;
  offload?: string | undefined;
}

/** Checked options. */
export interface UpConfig {
  dev: string;
  /** The kernel's address on the link, and the subnet's prefix length. */
  hostAddr: Ipv4Addr;
  prefix: number;
  /** The address the stack answers for. */
  addr: Ipv4Addr;
  mtu: number;
  port: number;
  pcap: string | undefined;
  /** Directory of static files served under `/` (besides the built-in routes). */
  root: string | undefined;
  /** Besides the --host address, the networks that may see connection details on the pages. */
  admin: Network[];
  /** TCP's caps (src/tcp/limits.ts). */
  limits: Pick<TcpLimits, 'memLimit' | 'maxConnections' | 'maxTimeWait' | 'maxOrphans' | 'orphanRetries' | 'synCookies'>;
  logLevel: string;
  /** Zones served on port 53 (undefined: no DNS server). */
  dnsZones: Zone[] | undefined;
  /** Serve the live view (src/web) at `/`; off: the plain status page, no watcher. */
  live: boolean;
  /** A reverse proxy (--config or --upstream); the built-in routes then move under /_netstack/. */
  proxy?: ProxyConfig | undefined;
  /** TAP mode (Ethernet + ARP) instead of TUN; `mac` given by --mac, else random per start. */
  tap: boolean;
  mac: Mac | undefined;
  /** TCP congestion control (RFC 9438 CUBIC or RFC 5681/6582 NewReno). */
  cc: CongestionControlName;
  /** virtio-net offloads on the TUN (TSO super-segments, partial checksums) when the kernel has them. */
  offload: boolean;
}

export const UP_DEFAULTS = {
  dev: 'netstack0',
  host: '10.77.0.1/24',
  addr: '10.77.0.2',
  mtu: 1500,
  port: 80,
  logLevel: 'info',
  cc: 'cubic',
  offload: 'on',
} as const;

/** Declare the options of `netstack up` (used by main.ts). */
export function upOptions(y: Argv): Argv<UpArgs> {
  return y
    .option('dev', {
      type: 'string',
      requiresArg: true,
      default: UP_DEFAULTS.dev,
      describe: 'name of the TUN (or TAP) interface to create (at most 15 characters)',
    })
    .option('tap', {
      type: 'boolean',
      default: false,
      describe: 'a TAP device instead of TUN: the stack speaks Ethernet II and ARP on it',
    })
    .option('mac', {
      type: 'string',
      requiresArg: true,
      describe: "with --tap: the stack's MAC address (default: a random locally administered one)",
    })
    .option('host', {
      type: 'string',
      requiresArg: true,
      default: UP_DEFAULTS.host,
      describe: "the kernel's side of the link: its address and the subnet, as CIDR",
    })
    .option('addr', {
      type: 'string',
      requiresArg: true,
      default: UP_DEFAULTS.addr,
      describe: 'the address netstack answers for (inside the --host subnet)',
    })
    .option('mtu', { type: 'string', requiresArg: true, default: String(UP_DEFAULTS.mtu), describe: 'MTU of the interface (68..65535)' })
    .option('port', {
      type: 'string',
      requiresArg: true,
      default: String(UP_DEFAULTS.port),
      describe: 'TCP port of the HTTP server running on the stack',
    })
    .option('pcap', {
      type: 'string',
      requiresArg: true,
      describe: 'write every packet in both directions to this pcap file (tcpdump -r FILE)',
    })
    .option('root', {
      type: 'string',
      requiresArg: true,
      describe: 'also serve the static files of this directory (no path can escape it)',
    })
    .option('dns', {
      type: 'boolean',
      describe: 'answer DNS on UDP and TCP port 53: netstack.test (the stack\'s address) and its reverse name',
    })
    .option('dns-zone', {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: 'also serve this RFC 1035 zone file (implies --dns; a zone for netstack.test replaces the built-in one)',
    })
    .option('live', {
      type: 'boolean',
      default: true,
      describe: 'serve the live view at / (state diagram, connections, ladders); --no-live: a plain status page and no watcher',
    })
    .option('config', {
      type: 'string',
      requiresArg: true,
      describe: 'run a reverse proxy / load balancer from this nginx-style file (upstream, server, location)',
    })
    .option('upstream', {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: 'proxy every path to this server, ADDR:PORT[,weight=N][,backup] (repeat for more)',
    })
    .option('balance', {
      type: 'string',
      requiresArg: true,
      describe: `how --upstream servers share requests: ${Object.keys(BALANCE_FLAGS).join(', ')} (default round-robin)`,
    })
    .option('admin', {
      type: 'string',
      requiresArg: true,
      describe:
        'a network (CIDR, or one address) whose clients may see connection details (4-tuples, sequence numbers) on the pages; repeatable. The --host address always may',
    })
    .option('mem-limit', {
      type: 'string',
      requiresArg: true,
      default: String(DEFAULT_TCP_LIMITS.memLimit / 2 ** 20),
      describe: "MiB of buffered TCP data for all connections (Linux tcp_mem): windows stay small above 3/4 of it, new data waits above it",
    })
    .option('max-connections', {
      type: 'string',
      requiresArg: true,
      default: String(DEFAULT_TCP_LIMITS.maxConnections),
      describe: 'connections in every state but TIME-WAIT; a SYN beyond them gets a RST',
    })
    .option('max-time-wait', {
      type: 'string',
      requiresArg: true,
      default: String(DEFAULT_TCP_LIMITS.maxTimeWait),
      describe: 'TIME-WAIT entries (Linux tcp_max_tw_buckets); beyond them a closing connection skips TIME-WAIT',
    })
    .option('max-orphans', {
      type: 'string',
      requiresArg: true,
      default: String(DEFAULT_TCP_LIMITS.maxOrphans),
      describe: 'connections closed by the application but still finishing (Linux tcp_max_orphans); beyond them the oldest is reset',
    })
    .option('orphan-retries', {
      type: 'string',
      requiresArg: true,
      default: String(DEFAULT_TCP_LIMITS.orphanRetries),
      describe: 'retransmissions or zero-window probes before an orphan is given up (Linux tcp_orphan_retries)',
    })
    .option('syn-cookies', {
      type: 'boolean',
      default: DEFAULT_TCP_LIMITS.synCookies !== false,
      describe: "answer SYNs with SYN cookies when a listener's SYN queue is full (Linux tcp_syncookies); --no-syn-cookies drops them",
    })
    .option('log-level', {
      type: 'string',
      requiresArg: true,
      default: UP_DEFAULTS.logLevel,
      describe: `log verbosity: ${LOG_LEVELS.join(', ')} (debug and trace show the protocol at work)`,
    })
    .option('cc', {
      type: 'string',
      requiresArg: true,
      default: UP_DEFAULTS.cc,
      describe: `TCP congestion control: ${Object.keys(CONGESTION_CONTROLS).join(' or ')} (CUBIC by default, as Linux)`,
    })
    .option('offload', {
      type: 'string',
      requiresArg: true,
      default: UP_DEFAULTS.offload,
      describe: 'on: TCP hands the TUN 64 KiB super-segments and leaves checksums to the kernel (virtio-net header, TSO), off when the kernel refuses; off: one packet per segment (TUN only)',
    })
    .example('sudo netstack up', 'then, in another terminal: ping 10.77.0.2')
    .example('sudo netstack up --host 10.99.0.1/24 --addr 10.99.0.2 --pcap /tmp/ns.pcap', '')
    .example('sudo netstack up --upstream 10.77.0.1:8001 --upstream 10.77.0.1:8002,weight=3 --balance least-conn', '')
    .example('sudo netstack up --tap --pcap /tmp/tap.pcap', 'then: ping 10.77.0.2; ip neigh; tcpdump -e -r /tmp/tap.pcap') as unknown as Argv<UpArgs>;
}

/** Check every option before touching the system. Throws CliError with one sentence. */
export function validateUpArgs(a: UpArgs): UpConfig {
  if (!/^[^\s/:]{1,15}$/.test(a.dev)) {
    throw new CliError(`--dev must be 1 to 15 characters without spaces, "/" or ":" (got "${a.dev}")`);
  }
  const host = parseCidr(a.host);
  if (!host) {
    throw new CliError(`--host must be an IPv4 address with a prefix length 1..32, like 10.77.0.1/24 (got "${a.host}")`);
  }
  const addr = parseIpv4(a.addr);
  if (addr === undefined) throw new CliError(`--addr must be an IPv4 address like 10.77.0.2 (got "${a.addr}")`);
  const subnet = `${formatIpv4((host.addr & prefixMask(host.prefix)) >>> 0)}/${host.prefix}`;
  if (!inSubnet(addr, host.addr, host.prefix)) {
    throw new CliError(`--addr ${a.addr} is not inside the --host subnet ${subnet}`);
  }
  if (addr === host.addr) {
    throw new CliError(`--addr ${a.addr} must differ from the --host address: the kernel uses that one`);
  }
  if (host.prefix <= 30) {
    // The all-zeros and all-ones host parts name the subnet and its broadcast (RFC 919, RFC 922).
    const net = (host.addr & prefixMask(host.prefix)) >>> 0;
    const broadcast = (net | ~prefixMask(host.prefix)) >>> 0;
    for (const [name, v] of [
      ['--host', host.addr],
      ['--addr', addr],
    ] as const) {
      if (v === net || v === broadcast) {
        throw new CliError(`${name} ${formatIpv4(v)} is the ${v === net ? 'network' : 'broadcast'} address of ${subnet}`);
      }
    }
  }
  // 68: the smallest MTU every IPv4 link must carry (RFC 791 §3.2).
  const mtu = integerIn(a.mtu, 68, 65535);
  if (mtu === undefined) throw new CliError(`--mtu must be an integer from 68 to 65535 (got "${a.mtu}")`);
  const port = integerIn(a.port, 1, 65535);
  if (port === undefined) throw new CliError(`--port must be an integer from 1 to 65535 (got "${a.port}")`);
  if (!(LOG_LEVELS as readonly string[]).includes(a.logLevel)) {
    throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')} (got "${a.logLevel}")`);
  }
  if (a.pcap !== undefined && a.pcap.trim() === '') throw new CliError('--pcap needs a file name');
  if (!Object.hasOwn(CONGESTION_CONTROLS, a.cc)) {
    throw new CliError(`--cc must be one of ${Object.keys(CONGESTION_CONTROLS).join(', ')} (got "${a.cc}")`);
  }
  let root: string | undefined;
  if (a.root !== undefined) {
    try {
      root = realpathSync(a.root);
      if (!statSync(root).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new CliError(`--root must be an existing directory (got "${a.root}")`);
    }
  }
  let dnsZones: Zone[] | undefined;
  const zoneFiles = a.dnsZone === undefined ? [] : Array.isArray(a.dnsZone) ? a.dnsZone : [a.dnsZone];
  if (a.dns || zoneFiles.length > 0) {
    const byOrigin = new Map(defaultZones(a.addr.trim()).map((z) => [z.origin, z]));
    for (const file of zoneFiles) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read the zone file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`);
      }
      try {
        const zone = parseZoneFile(text, file);
        byOrigin.set(zone.origin, zone);
      } catch (err) {
        if (err instanceof ZoneFileError) throw new CliError(err.message);
        throw err;
      }
    }
    dnsZones = [...byOrigin.values()];
  }
  let proxy: ProxyConfig | undefined;
  try {
    proxy = loadProxyConfig(a);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const admin: Network[] = [];
  for (const text of a.admin === undefined ? [] : Array.isArray(a.admin) ? a.admin : [a.admin]) {
    const net = parseNetwork(String(text));
    if (!net) throw new CliError(`--admin must be an IPv4 network like 10.77.0.0/24 or one address like 10.77.0.5 (got "${text}")`);
    admin.push(net);
  }
  const count = (flag: string, v: string | number, min: number) => {
    const n = integerIn(v, min, 999_999);
    if (n === undefined) throw new CliError(`--${flag} must be an integer from ${min} to 999999 (got "${v}")`);
    return n;
  };
  const d = DEFAULT_TCP_LIMITS;
  const limits = {
    memLimit: count('mem-limit', a.memLimit ?? d.memLimit / 2 ** 20, 1) * 2 ** 20,
    maxConnections: count('max-connections', a.maxConnections ?? d.maxConnections, 1),
    maxTimeWait: count('max-time-wait', a.maxTimeWait ?? d.maxTimeWait, 0),
    maxOrphans: count('max-orphans', a.maxOrphans ?? d.maxOrphans, 0),
    orphanRetries: count('orphan-retries', a.orphanRetries ?? d.orphanRetries, 1),
    synCookies: a.synCookies ?? d.synCookies,
  };
  const offload = a.offload ?? UP_DEFAULTS.offload;
  if (offload !== 'on' && offload !== 'off') throw new CliError(`--offload must be on or off (got "${offload}")`);
  let mac: Mac | undefined;
  if (a.mac !== undefined) {
    if (!a.tap) throw new CliError('--mac only applies to a TAP device: add --tap');
    mac = parseMac(a.mac);
    if (!mac) throw new CliError(`--mac must be six hex octets like 02:00:00:00:00:02 (got "${a.mac}")`);
    if (isGroupMac(mac) || isZeroMac(mac)) {
      throw new CliError(`--mac ${a.mac} is not a unicast address (its first octet must be even, and not all zeros)`);
    }
  }
  return {
    dnsZones,
    proxy,
    dev: a.dev,
    hostAddr: host.addr,
    prefix: host.prefix,
    addr,
    mtu,
    port: proxy?.listen ?? port,
    pcap: a.pcap,
    root,
    admin,
    limits,
    logLevel: a.logLevel,
    live: a.live ?? true,
    tap: a.tap ?? false,
    mac,
    cc: a.cc as CongestionControlName,
    offload: offload === 'on' && !(a.tap ?? false),
  };
}

function integerIn(v: string | number, min: number, max: number): number | undefined {
  const text = String(v).trim();
  if (!/^\d{1,6}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** Refuse addresses that another interface of this machine already has. */
export function checkAddressesFree(cfg: Pick<UpConfig, 'dev' | 'hostAddr' | 'addr'>): void {
  for (const [ifname, addrs] of Object.entries(networkInterfaces())) {
    if (ifname === cfg.dev) continue;
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4') continue;
      const v = parseIpv4(a.address);
      if (v === cfg.hostAddr || v === cfg.addr) {
        const which = v === cfg.hostAddr ? '--host' : '--addr';
        throw new CliError(`address ${a.address} (${which}) is already in use on ${ifname}: pick another subnet with --host and --addr`);
      }
    }
  }
}

/** Turn an error from creating or configuring the device into one sentence for the user. */
export function explainDeviceError(err: unknown, dev: string): CliError {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'EPERM':
    case 'EACCES':
      return new CliError('netstack up needs CAP_NET_ADMIN: run it as root, e.g. sudo netstack up');
    case 'ENOENT':
      return new CliError(
        '/dev/net/tun does not exist: load the tun module (sudo modprobe tun), or give the container the device',
      );
    case 'EBUSY':
      return new CliError(`device name ${dev} is already in use: pick another with --dev, or stop what owns it`);
    case 'ERR_NETSTACK_ADDON':
      return new CliError('the native TUN addon is not built: run npm install (it needs python3, make and g++)');
    default:
      return new CliError(`could not set up ${dev}: ${e?.message ?? String(err)}`);
  }
}

/**
 * The web application served on `--port` over the stack's own TCP: the HTTP/1.1 server of
 * src/http with the routes of `netstack up` (status page, /bytes/N, /echo, /connections,
 * /metrics, and --root's files).
 */
export function buildHttpApp(
  stack: Stack,
  opts: {
    port: number;
    root?: string | undefined;
    logger: Logger;
    /** Serve the live view at `/` (a watcher records every connection's story). */
    live?: boolean;
    /** The kernel's address on the link: by default the only one shown connection details. */
    hostAddr?: Ipv4Addr;
    /** Who may see 4-tuples and sequence numbers on the live view. */
    canSeeDetails?: (remoteAddress: string) => boolean;
    /** A reverse proxy: it owns every path, the built-in pages move under /_netstack/. */
    proxy?: ProxyConfig | undefined;
    /** More counters for the status page and /metrics (the DNS server's). */
    moreStats?: () => Record<string, number>;
  },
): { close(): void; proxy: ProxyApp | undefined } {
  const startedAt = Date.now();
  let proxy: ProxyApp | undefined;
  const view: StackView = {
    addr: formatIpv4(stack.addr),
    startedAt,
    stats: () => {
      const out: Record<string, number> = { ...stack.stats() };
      for (const [k, v] of Object.entries(http.stats)) out[`http.${k}`] = v;
      for (const [k, v] of Object.entries(proxy?.proxy.stats ?? {})) out[`proxy.${k}`] = v;
      if (opts.moreStats) Object.assign(out, opts.moreStats());
      return out;
    },
    connections: (limit?: number, offset?: number) => stack.connections(limit, offset),
    connectionStates: () => stack.connectionStates(),
    ...(stack.ethernet ? { neighbours: () => stack.neighbours() } : {}),
  };
  const hostAddr = opts.hostAddr === undefined ? '' : formatIpv4(opts.hostAddr);
  // Connection details (4-tuples, sequence numbers) only for the host side (and --admin networks).
  const canSeeDetails = opts.canSeeDetails ?? ((remote: string) => remote === hostAddr);
  // The live view's page and assets live at absolute paths (/ and /live/): with a proxy owning
  // every path it is not mounted, and the plain status page is served under /_netstack/.
  const live = opts.live && !opts.proxy
    ? createLiveView({
        watcher: new Watcher(stack),
        view,
        hostAddr,
        canSeeDetails,
        now: () => stack.clock.now(),
      })
    : undefined;
  let handler = createNetstackApp(view, { root: opts.root, live: live?.handle, canSeeDetails });
  if (opts.proxy) {
    // The proxy owns every path; the built-in pages move under /_netstack/ and show the upstreams.
    const builtins = createNetstackApp({ ...view, base: BUILTIN_BASE, extra: { html: () => proxy!.extra.html(), metrics: () => proxy!.extra.metrics() } }, { canSeeDetails });
    proxy = createProxyApp({ config: opts.proxy, clock: stack.clock, logger: opts.logger, builtins, connect: (host, port) => stack.connect({ host, port, noDelay: true }) });
    handler = proxy.handler;
  }
  const http = new HttpServer({ handler, clock: stack.clock, logger: opts.logger });
  // The fast path: connections as plain TcpStreams, no Node stream machinery (always half-open,
  // so a client's FIN never cuts a response that is still being written).
  const server = stack.createServer({ onStream: (stream) => http.handleStream(stream) });
  server.on('error', (err: Error) => opts.logger.error({ err: err.message }, 'http listener failed'));
  server.listen(opts.port);
  return {
    proxy,
    close: () => {
      live?.close();
      http.close();
      server.close();
      proxy?.close();
    },
  };
}

/** Logs: pretty on a terminal; JSON lines on stderr otherwise, so stdout stays for the user. */
function makeLogger(level: string): Logger {
  return process.stdout.isTTY ? createLogger(level) : createLogger(level, { pretty: false, destination: process.stderr });
}

/**
 * The stack speaks IPv4 only: keep the kernel from sending IPv6 router solicitations and
 * MLD reports into the device (they would only be counted and dropped). Best effort.
 */
function disableIpv6(dev: string): void {
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
  } catch {
    // No IPv6 in this kernel or namespace: nothing to silence.
  }
}

/** Create and configure the TUN (or TAP) device; on failure nothing is left behind. */
export function openDevice(cfg: Pick<UpConfig, 'dev' | 'mtu' | 'hostAddr' | 'prefix'> & { tap?: boolean; offload?: boolean }): TunLink {
  let tun: TunLink | undefined;
  try {
    tun = TunLink.open({ name: cfg.dev, mtu: cfg.mtu, tap: cfg.tap ?? false, offload: cfg.offload ?? false });
    disableIpv6(tun.name);
    tun.configure({ addr: cfg.hostAddr, prefix: cfg.prefix, up: true });
    return tun;
  } catch (err) {
    tun?.close();
    throw explainDeviceError(err, cfg.dev);
  }
}

/**
 * Run `netstack up` until SIGINT or SIGTERM. Resolves after a clean shutdown (device
 * closed, which removes it; pcap flushed). Throws CliError for anything the user must fix.
 */
export async function runUp(cfg: UpConfig): Promise<void> {
  const logger = makeLogger(cfg.logLevel);
  checkAddressesFree(cfg);

  const tun = openDevice(cfg);
  const hostCidr = `${formatIpv4(cfg.hostAddr)}/${cfg.prefix}`;
  const mac = cfg.tap ? (cfg.mac ?? localMac(randomBytes(6))) : undefined;
  logger.info(
    { dev: tun.name, mtu: tun.mtu, host: hostCidr, ...(mac ? { mac: formatMac(mac) } : {}), ...(cfg.tap ? {} : { offload: tun.offload }) },
    `${cfg.tap ? 'TAP' : 'TUN'} device created and configured`,
  );
  if (tun.offloadError) logger.warn({ reason: tun.offloadError }, 'the kernel refused the TUN offloads: one packet per segment');

  let pcap: PcapWriter | undefined;
  let link: Link = tun;
  if (cfg.pcap) {
    try {
      pcap = PcapWriter.open(cfg.pcap, cfg.tap ? LINKTYPE_ETHERNET : LINKTYPE_RAW);
    } catch (err) {
      tun.close();
      throw new CliError(`cannot write the pcap file ${cfg.pcap}: ${(err as Error).message}`);
    }
    link = wrapLink(tun, pcap);
    logger.info({ file: cfg.pcap }, 'recording packets');
  }

  const stack = new Stack({
    link,
    addr: cfg.addr,
    prefix: cfg.prefix,
    gateway: cfg.hostAddr,
    ...(mac ? { ethernet: { mac } } : {}),
    limits: cfg.limits,
    logger,
    tcp: { congestionControl: CONGESTION_CONTROLS[cfg.cc] },
    offload: cfg.offload,
  });
  // Connection details (4-tuples, sequence numbers) only for the host side and --admin networks.
  const canSeeDetails = allowNetworks([{ addr: cfg.hostAddr, prefix: 32 }, ...cfg.admin]);
  const dns = cfg.dnsZones ? new DnsService(stack, cfg.dnsZones, { onError: (err) => logger.error({ err: err.message }, 'dns server failed') }) : undefined;
  const app = buildHttpApp(stack, {
    port: cfg.port,
    root: cfg.root,
    logger,
    live: cfg.live,
    hostAddr: cfg.hostAddr,
    proxy: cfg.proxy,
    canSeeDetails,
    ...(dns ? { moreStats: () => dns.stats() } : {}),
  });
  if (dns) logger.info({ zones: cfg.dnsZones!.map((z) => z.origin) }, 'DNS server on UDP and TCP port 53');

  const addr = formatIpv4(cfg.addr);
  const url = `http://${addr}${cfg.port === 80 ? '' : `:${cfg.port}`}`;
  const tryThis = `ping ${addr}  or  curl ${url}/${dns ? `  or  dig @${addr} netstack.test` : ''}`;
  const onLink = mac ? `${addr} (MAC ${formatMac(mac)}) on TAP ${tun.name}` : `${addr} on ${tun.name}`;
  process.stdout.write(`netstack is up: ${onLink} (host ${hostCidr}). Try: ${tryThis}\n`);
  if (cfg.proxy) {
    const ups = [...cfg.proxy.upstreams.values()].map((u) => `${u.name} (${u.servers.length} server${u.servers.length === 1 ? '' : 's'}, ${u.method})`);
    process.stdout.write(`Proxying to ${ups.join(', ')}; netstack's own pages moved to ${url}${BUILTIN_BASE}/ (status, metrics, connections, bytes/N, echo)\n`);
  }

  await new Promise<void>((resolve, reject) => {
    let stopping = false;
    const stop = (why: string, failure?: Error) => {
      if (stopping) {
        // A second Ctrl-C while shutting down: leave at once.
        process.exit(130);
      }
      stopping = true;
      logger.info({ reason: why }, 'shutting down');
      app.close();
      dns?.close();
      stack.close(); // closes the link: the kernel removes the interface
      pcap?.close();
      logger.info({ tun: tun.stats, stack: stack.stats() }, 'stopped');
      if (failure) reject(new CliError(`the ${cfg.tap ? 'TAP' : 'TUN'} device ${tun.name} failed: ${failure.message}`));
      else resolve();
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    tun.onError((err) => stop('device error', err));
  }).finally(() => flushLogs(logger));
}

/** Wait (bounded) until log lines reached their destination, e.g. the pino-pretty worker. */
function flushLogs(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    logger.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
