/**
 * The Linux kernel as a TCP peer: small Python programs run inside a test's network
 * namespace (`ip netns exec NS python3 -c ...`) with ordinary kernel sockets, plus a
 * reader for `ss -tan`.
 *
 * Every program reports one JSON line on stdout, so a test can compare what the kernel
 * sent and received (byte counts and SHA-256) with what our stack saw. Data is random
 * (os.urandom) and each side hashes what it sent and what it received: a lost, duplicated,
 * reordered or corrupted byte anywhere changes a hash. Every program has a deadline
 * (socket timeouts, and the SIGKILL timeout of `run`), so nothing here can hang a test.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import type { ExecResult, Netns } from './netns.js';

/** What a kernel endpoint did, as it reports it. */
export interface KernelTransfer {
  /** The kernel socket's own port (client: its ephemeral port; server: the listening port). */
  localPort: number;
  /** The peer's port as the kernel saw it. */
  peerPort: number;
  sent: number;
  sentSha256: string;
  received: number;
  receivedSha256: string;
  /** Seconds from connect/accept to the end of the exchange. */
  seconds: number;
  /** The first socket error (errno name, e.g. "ECONNRESET"), when `allowError` let it through. */
  error?: string | null;
}

export interface KernelClientOptions {
  host: string;
  port: number;
  /** Random bytes to send. */
  send: number;
  /** After sending, half-close with shutdown(SHUT_WR) (the kernel's FIN goes first). Default true. */
  shutdownAfterSend?: boolean;
  /** Per-operation socket timeout, seconds (default 20). */
  timeoutS?: number;
  /** SO_RCVBUF before connecting (the kernel doubles it): a small one makes the kernel's window close early. */
  rcvbuf?: number;
  /** Wait this long before starting to read: a slow reader. */
  readDelayS?: number;
  /** Bind to this local port first (SO_REUSEADDR), e.g. to reuse a 4-tuple. */
  bindPort?: number;
  /** After sending (and `abortDelayS`), close with SO_LINGER 0: the kernel sends RST, not FIN. Nothing is read. */
  abortAfterSend?: boolean;
  abortDelayS?: number;
  /** Resolve with `error` set instead of rejecting when a socket call fails (e.g. ECONNRESET). */
  allowError?: boolean;
}

export interface KernelServerOptions {
  /** Address and port to listen on inside the namespace. */
  host: string;
  port: number;
  /** Random bytes to send to the one client it accepts, while reading until EOF. */
  send: number;
  timeoutS?: number;
}

/**
 * The shared Python program. `mode` is "client" (connect), "server" (accept one) or
 * "connect" (only try to connect; report the errno name).
 *
 * The exchange: one thread sends `send` random bytes (then SHUT_WR when asked), while the
 * main thread reads until EOF (or, with `abortAfterSend`, resets the connection instead);
 * then the socket is closed. Reading and writing at once
 * keeps an echoing peer from deadlocking with both directions' buffers full.
 */
const PEER_PY = String.raw`
import errno, hashlib, json, os, socket, struct, sys, threading, time
cfg = json.loads(sys.argv[1])
mode = cfg['mode']
timeout = cfg.get('timeoutS', 20)

def report(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()

def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__

def new_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if cfg.get('rcvbuf'):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg['rcvbuf'])
    return s

if mode == 'connect':
    s = new_socket()
    s.settimeout(timeout)
    try:
        s.connect((cfg['host'], cfg['port']))
        report({'result': 'connected'})
    except OSError as e:
        report({'result': errname(e)})
    sys.exit(0)

if mode == 'server':
    srv = new_socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((cfg['host'], cfg['port']))
    srv.listen(1)
    srv.settimeout(timeout)
    report({'ready': True})
    s, _ = srv.accept()
    srv.close()
else:
    s = new_socket()
    s.settimeout(timeout)
    if cfg.get('bindPort'):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', cfg['bindPort']))
    s.connect((cfg['host'], cfg['port']))
s.settimeout(timeout)
local_port = s.getsockname()[1]
peer_port = s.getpeername()[1]
start = time.monotonic()
data = os.urandom(cfg['send'])
errors = []

def sender():
    try:
        s.sendall(data)
        if cfg.get('shutdownAfterSend'):
            s.shutdown(socket.SHUT_WR)
    except OSError as e:
        errors.append(errname(e))

t = threading.Thread(target=sender)
t.start()
if cfg.get('readDelayS'):
    time.sleep(cfg['readDelayS'])
h = hashlib.sha256()
received = 0
if cfg.get('abortAfterSend'):
    t.join(timeout)
    time.sleep(cfg.get('abortDelayS', 0))
    # SO_LINGER {on, 0 s}: close() sends RST instead of FIN (and drops unsent data).
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
else:
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            h.update(b)
            received += len(b)
    except OSError as e:
        errors.append(errname(e))
    t.join(timeout)
s.close()
report({
    'localPort': local_port,
    'peerPort': peer_port,
    'sent': len(data),
    'sentSha256': hashlib.sha256(data).hexdigest(),
    'received': received,
    'receivedSha256': h.hexdigest(),
    'seconds': time.monotonic() - start,
    'error': errors[0] if errors else None,
})
`;

let python: string | undefined;

/** The real interpreter path (pyenv shims are shell scripts: resolving once saves ~100 ms per run). */
function pythonPath(): string {
  if (python === undefined) {
    const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 10_000 });
    python = r.status === 0 && r.stdout.trim() ? r.stdout.trim() : 'python3';
  }
  return python;
}

function lastJsonLine(stdout: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]!) as Record<string, unknown>;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

function toTransfer(obj: Record<string, unknown> | undefined, what: string, stderr: string, allowError = false): KernelTransfer {
  if (!obj || typeof obj['receivedSha256'] !== 'string') throw new Error(`${what} failed: ${stderr.trim() || 'no report'}`);
  if (obj['error'] && !allowError) throw new Error(`${what}: socket error ${String(obj['error'])}`);
  return obj as unknown as KernelTransfer;
}

/**
 * A kernel client in the namespace: connect, send and receive at once, close. Rejects on a
 * failed connect, and on any later socket error unless `allowError`.
 */
export async function kernelClient(ns: Netns, opts: KernelClientOptions): Promise<KernelTransfer> {
  const cfg = { mode: 'client', shutdownAfterSend: true, timeoutS: 20, ...opts };
  const r = await ns.exec([pythonPath(), '-c', PEER_PY, JSON.stringify(cfg)], { timeoutMs: (cfg.timeoutS + 10) * 1000 });
  return toTransfer(lastJsonLine(r.stdout), 'kernel client', r.stderr, opts.allowError);
}

/** Try a kernel connect() to host:port; resolves to "connected" or the errno name (e.g. "ECONNREFUSED"). */
export async function kernelConnect(ns: Netns, host: string, port: number, timeoutS = 10): Promise<string> {
  const cfg = { mode: 'connect', host, port, timeoutS };
  const r = await ns.exec([pythonPath(), '-c', PEER_PY, JSON.stringify(cfg)], { timeoutMs: (timeoutS + 10) * 1000 });
  const obj = lastJsonLine(r.stdout);
  if (!obj || typeof obj['result'] !== 'string') throw new Error(`kernel connect failed: ${r.stderr.trim()}`);
  return obj['result'];
}

/** Run a short Python program inside the namespace (for one-off socket calls a test needs). */
export function kernelPython(ns: Netns, code: string, timeoutMs = 20_000): Promise<ExecResult> {
  return ns.exec([pythonPath(), '-c', code], { timeoutMs });
}

export interface KernelServer {
  readonly process: ChildProcess;
  /** The report after the one accepted connection is done (rejects if the program fails). */
  readonly done: Promise<KernelTransfer>;
  /** Kill the program (by its PID) if it is still running. */
  kill(): void;
}

/**
 * A kernel server in the namespace that accepts one connection, sends `send` random bytes
 * while reading until EOF, then closes. Resolves once it is listening.
 */
export async function kernelServer(ns: Netns, opts: KernelServerOptions): Promise<KernelServer> {
  const cfg = { mode: 'server', timeoutS: 20, ...opts };
  const child = ns.spawn([pythonPath(), '-c', PEER_PY, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const killTimer = setTimeout(() => child.kill('SIGKILL'), (cfg.timeoutS + 10) * 1000);
  const exited = new Promise<void>((resolve) => {
    child.on('close', () => {
      clearTimeout(killTimer);
      resolve();
    });
    child.on('error', (e) => {
      err += String(e);
      resolve();
    });
  });
  child.stdout!.on('data', (b: Buffer) => {
    if (out.length < 1 << 20) out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    if (err.length < 1 << 20) err += b.toString();
  });
  const ready = new Promise<boolean>((resolve) => {
    const check = () => {
      if (out.includes('"ready"')) resolve(true);
    };
    child.stdout!.on('data', check);
    void exited.then(() => resolve(out.includes('"ready"')));
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  if (!(await ready)) {
    kill();
    throw new Error(`kernel server did not start: ${err.trim()}`);
  }
  const done = exited.then(() => toTransfer(lastJsonLine(out), 'kernel server', err));
  done.catch(() => {}); // the test awaits it; never an unhandled rejection if it does not
  return { process: child, done, kill };
}

export interface KernelSocket {
  /** ss state name: ESTAB, SYN-SENT, FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT, CLOSE-WAIT, LAST-ACK, ... */
  state: string;
  local: string;
  peer: string;
}

/** The namespace's TCP sockets, from `ss -tan` (listening sockets included). */
export async function kernelSockets(ns: Netns): Promise<KernelSocket[]> {
  const r = await ns.exec(['ss', '-tanH']);
  if (r.code !== 0) throw new Error(`ss failed: ${r.stderr.trim()}`);
  const out: KernelSocket[] = [];
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    out.push({ state: f[0]!, local: f[3]!, peer: f[4]! });
  }
  return out;
}

/** Poll `cond` every 10 ms for at most `ms` (real time); true once it holds. For "eventually" checks, never timing. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  for (let waited = 0; waited <= ms; waited += 10) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}
