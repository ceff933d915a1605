/**
 * TCP against the Linux kernel over a real TUN device. The kernel in a fresh network
 * namespace is the peer: Python programs with ordinary sockets (test/helpers/kernel-peer.ts)
 * connect to our listeners and accept our connections, and `ss -tan` shows the kernel's
 * side of each close.
 *
 * Data is random and hashed on both sides, so any lost, duplicated, reordered or corrupted
 * byte fails a test. State machines are checked by the exact sequence of our transitions.
 * Timing is never asserted; throughput is printed for information.
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect, it, onTestFinished, vi } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import type { Link, PacketBatchHandler } from '../../src/link/link.js';
import { Stack } from '../../src/stack.js';
import type { Connection } from '../../src/tcp/connection.js';
import type { TransitionEvent } from '../../src/tcp/layer.js';
import type { TcpSocket } from '../../src/tcp/socket.js';
import { kernelClient, kernelConnect, kernelPython, kernelServer, kernelSockets, waitFor } from '../helpers/kernel-peer.js';
import type { NetnsTun } from '../helpers/netns.js';
import { createNetnsTun, describeInterop } from '../helpers/netns.js';

const MB = 1 << 20;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A stack on the namespace's TUN device that records every transition; closed after the test. */
function startStack(t: NetnsTun, link: Link = t.link): { stack: Stack; events: TransitionEvent[] } {
  const stack = new Stack({ link, addr: parseIpv4(t.stackAddr)! });
  const events: TransitionEvent[] = [];
  stack.onTransition((e) => events.push(e));
  onTestFinished(() => stack.close());
  return { stack, events };
}

/** The transitions of the connections matching `which`, as "FROM>TO". */
function transitions(events: TransitionEvent[], which: (c: Connection) => boolean): string[] {
  return events.filter((e) => which(e.conn)).map((e) => `${e.from}>${e.to}`);
}

/** An event (or an error event) of an emitter as a promise, bounded by `ms`. */
function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string, ms = 20_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${ms} ms`)), ms);
    emitter.once(event, (v: T) => {
      clearTimeout(timer);
      resolve(v);
    });
    if (event !== 'error') {
      emitter.once('error', (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
    }
  });
}

function mbps(bytes: number, seconds: number): string {
  return `${(bytes / MB / seconds).toFixed(1)} MB/s`;
}

/** A server socket's bytes, hashed as they arrive. */
function hashInput(socket: TcpSocket): { bytes: () => number; hex: () => string } {
  const h = createHash('sha256');
  let n = 0;
  let hex: string | undefined;
  socket.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
  });
  return { bytes: () => n, hex: () => (hex ??= h.digest('hex')) };
}

const PASSIVE_OPEN = ['CLOSED>SYN-RECEIVED', 'SYN-RECEIVED>ESTABLISHED'];

describeInterop('TCP against the Linux kernel', () => {
  it('echoes 10 MB to a kernel client intact; the kernel closes first and holds TIME-WAIT', async () => {
    const t = await createNetnsTun();
    // Our FIN may be sent twice when the machine stalls us past the tail-loss probe (RFC 8985
    // §7: ~200 ms for a lone segment) before its ACK is read: the kernel, already in TIME-WAIT,
    // ACKs the copy, we are CLOSED by then and answer that with a RST (RFC 9293 §3.10.7.1), and
    // Linux lets a RST end TIME-WAIT by default (tcp_rfc1337=0). RFC 1337's fix keeps it, so
    // what this test checks, who holds TIME-WAIT, does not depend on the machine's load.
    expect((await t.exec(['sysctl', '-q', '-w', 'net.ipv4.tcp_rfc1337=1'])).code).toBe(0);
    const { stack, events } = startStack(t);
    let received: ReturnType<typeof hashInput> | undefined;
    let closed = false;
    stack
      .createServer((s) => {
        received = hashInput(s);
        s.pipe(s); // echo; pipe() ends our side when the kernel's FIN has been read
        s.on('close', () => (closed = true));
      })
      .listen(7);

    const r = await kernelClient(t, { host: t.stackAddr, port: 7, send: 10 * MB });
    console.log(`[tcp] 10 MB echo (kernel client): ${r.seconds.toFixed(2)} s, ${mbps(2 * r.sent, r.seconds)} both ways together`);

    expect(r.sent).toBe(10 * MB);
    expect(received!.bytes()).toBe(10 * MB);
    expect(received!.hex()).toBe(r.sentSha256);
    expect(r.received).toBe(10 * MB);
    expect(r.receivedSha256).toBe(r.sentSha256);

    // The kernel sent its FIN first (shutdown after sending): it ends in TIME-WAIT, and we
    // go CLOSE-WAIT -> LAST-ACK -> CLOSED once our echo has drained and our FIN is acknowledged.
    const kernel = `${t.hostAddr}:${r.localPort}`;
    const sockets = await kernelSockets(t);
    const why = Object.entries(stack.stats()).filter(([k]) => /^tcp\.(tlp|rto|retransmit|rst)/.test(k));
    expect(sockets.filter((s) => s.local === kernel), JSON.stringify(why)).toEqual([{ state: 'TIME-WAIT', local: kernel, peer: `${t.stackAddr}:7` }]);
    expect(await waitFor(() => closed)).toBe(true);
    expect(transitions(events, (c) => c.remotePort === r.localPort)).toEqual([
      ...PASSIVE_OPEN,
      'ESTABLISHED>CLOSE-WAIT',
      'CLOSE-WAIT>LAST-ACK',
      'LAST-ACK>CLOSED',
    ]);
    expect(stack.connections()).toEqual([]);
  });

  it('closes first after sending 2 MB while receiving 2 MB: FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT on our side only', async () => {
    const t = await createNetnsTun();
    const { stack, events } = startStack(t);
    const data = randomBytes(2 * MB);
    let received: ReturnType<typeof hashInput> | undefined;
    stack
      .createServer((s) => {
        received = hashInput(s);
        s.end(data); // send, then FIN: we close first
      })
      .listen(80);

    // The kernel sends 2 MB but does not shut down; it closes after reading our FIN.
    const r = await kernelClient(t, { host: t.stackAddr, port: 80, send: 2 * MB, shutdownAfterSend: false });
    expect(r.received).toBe(data.length);
    expect(r.receivedSha256).toBe(sha256(data));
    expect(await waitFor(() => received?.bytes() === r.sent)).toBe(true);
    expect(received!.hex()).toBe(r.sentSha256);

    const ours = (c: Connection) => c.remotePort === r.localPort;
    expect(await waitFor(() => events.some((e) => ours(e.conn) && e.to === 'TIME-WAIT'))).toBe(true);
    expect(transitions(events, ours)).toEqual([...PASSIVE_OPEN, 'ESTABLISHED>FIN-WAIT-1', 'FIN-WAIT-1>FIN-WAIT-2', 'FIN-WAIT-2>TIME-WAIT']);
    expect(stack.connections().map((c) => [c.remote, c.state])).toEqual([[`${t.hostAddr}:${r.localPort}`, 'TIME-WAIT']]);

    // The kernel went CLOSE-WAIT -> LAST-ACK -> CLOSED: its socket disappears once our ACK of its
    // FIN arrives, and at no point is it in TIME-WAIT.
    const kernel = `${t.hostAddr}:${r.localPort}`;
    const seen: string[] = [];
    const gone = await waitFor(async () => {
      const mine = (await kernelSockets(t)).filter((s) => s.local === kernel);
      seen.push(...mine.map((s) => s.state));
      return mine.length === 0;
    });
    expect(gone, `kernel socket states seen: ${seen.join(', ')}`).toBe(true);
    expect(seen).not.toContain('TIME-WAIT');
  });

  it('connects out to a kernel server (active open): 1 MB each way, we close first, clean close', async () => {
    const t = await createNetnsTun();
    const { stack, events } = startStack(t);
    const server = await kernelServer(t, { host: t.hostAddr, port: 5001, send: MB });
    onTestFinished(() => server.kill());

    const data = randomBytes(MB);
    const socket = stack.connect({ host: t.hostAddr, port: 5001 });
    const input = hashInput(socket);
    let closed = false;
    socket.on('close', () => (closed = true));
    await once(socket, 'connect');
    expect(socket.remoteAddress).toBe(t.hostAddr);
    expect(socket.remotePort).toBe(5001);
    expect(socket.localAddress).toBe(t.stackAddr);
    const localPort = socket.localPort!;
    socket.end(data);

    const k = await server.done;
    expect(k.peerPort).toBe(localPort);
    expect(k.received).toBe(MB);
    expect(k.receivedSha256).toBe(sha256(data));
    expect(await waitFor(() => closed)).toBe(true);
    expect(socket.errored).toBeNull();
    expect(input.bytes()).toBe(MB);
    expect(input.hex()).toBe(k.sentSha256);

    expect(transitions(events, (c) => c.localPort === localPort)).toEqual([
      'CLOSED>SYN-SENT',
      'SYN-SENT>ESTABLISHED',
      'ESTABLISHED>FIN-WAIT-1',
      'FIN-WAIT-1>FIN-WAIT-2',
      'FIN-WAIT-2>TIME-WAIT',
    ]);
    // The kernel's accepted socket closed after ours: LAST-ACK, then gone (no TIME-WAIT there).
    expect(
      await waitFor(async () => !(await kernelSockets(t)).some((s) => s.peer === `${t.stackAddr}:${localPort}`)),
    ).toBe(true);
  });

  it('answers a kernel connect to a port without a listener with RST: ECONNREFUSED', async () => {
    const t = await createNetnsTun();
    const { stack } = startStack(t);
    stack.createServer(() => {}).listen(80); // a listener elsewhere must not matter
    expect(await kernelConnect(t, t.stackAddr, 81)).toBe('ECONNREFUSED');
    expect(stack.stats()['tcp.rst.out']).toBe(1);
    expect(await kernelConnect(t, t.stackAddr, 80)).toBe('connected');
  });

  it("reports ECONNREFUSED on a connect to a closed kernel port (the kernel's RST in SYN-SENT)", async () => {
    const t = await createNetnsTun();
    const { stack, events } = startStack(t);
    const socket = stack.connect({ host: t.hostAddr, port: 9 });
    const err = await once<Error & { code?: string; syscall?: string }>(socket, 'error');
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.syscall).toBe('connect');
    expect(transitions(events, () => true)).toEqual(['CLOSED>SYN-SENT', 'SYN-SENT>CLOSED']);
    expect(stack.connections()).toEqual([]);
  });

  it('[icmp.refused-kernel] reports ECONNREFUSED at once when the kernel answers our SYN with ICMP port unreachable (iptables REJECT)', async () => {
    const t = await createNetnsTun();
    const rule = ['INPUT', '-p', 'tcp', '--dport', '9', '-j', 'REJECT', '--reject-with', 'icmp-port-unreachable'];
    const added = await t.exec(['iptables', '-A', ...rule]);
    expect(added.code, added.stderr).toBe(0);
    const { stack, events } = startStack(t);
    const socket = stack.connect({ host: t.hostAddr, port: 9 });
    const err = await once<Error & { code?: string; syscall?: string }>(socket, 'error');
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.syscall).toBe('connect');
    expect(events.map((e) => `${e.from}>${e.to} (${e.cause})`)).toEqual(['CLOSED>SYN-SENT (active open)', 'SYN-SENT>CLOSED (ICMP port unreachable in SYN-SENT)']);
    // At once: the first SYN's answer ended it, before any retransmission.
    const s = stack.stats();
    expect([s['tcp.icmp.refused'], s['tcp.rto'] ?? 0, s['icmp.error.delivered']]).toEqual([1, 0, 1]);
    expect(stack.connections()).toEqual([]);
  });

  it('advertises a zero window while our reader is paused for 1 s, answers probes, then completes 6 MB intact', async () => {
    const t = await createNetnsTun();
    let zeroWindowsOut = 0;
    let probesIn = 0;
    let dataIn = 0;
    let lastAckOut: number | undefined;
    const tap = new TapLink(
      t.link,
      (tcp) => {
        if (tcp.payload > 0) dataIn++;
        // A zero-window probe (RFC 9293 §3.8.6.1): Linux sends an empty segment at SND.UNA - 1,
        // an old sequence number that we must answer with an ACK carrying our window.
        else if (tcp.flags === TCP_ACK && lastAckOut !== undefined && tcp.seq === (lastAckOut - 1) >>> 0) probesIn++;
      },
      (tcp) => {
        if (!(tcp.flags & TCP_ACK) || tcp.flags & TCP_RST) return;
        lastAckOut = tcp.ack;
        if (tcp.window === 0) zeroWindowsOut++;
      },
    );
    const { stack } = startStack(t, tap);
    let received: ReturnType<typeof hashInput> | undefined;
    let pausedWindow: number | undefined;
    let dataInAtResume = 0;
    stack
      .createServer((s) => {
        received = hashInput(s);
        s.pause(); // the stream buffer (64 KB) and then the receive buffer (1 MB) fill up
        setTimeout(() => {
          pausedWindow = stack.connections()[0]?.rcvWnd;
          dataInAtResume = dataIn;
          s.resume();
        }, 1000);
      })
      .listen(80);

    const r = await kernelClient(t, { host: t.stackAddr, port: 80, send: 6 * MB });
    expect(await waitFor(() => received?.bytes() === 6 * MB)).toBe(true);
    expect(received!.hex()).toBe(r.sentSha256);

    // While paused, less than one segment of window was left (what remains rounds down to 0 in
    // the scaled window field), and that is what went on the wire: "win 0".
    expect(pausedWindow).toBeLessThan(1460);
    expect(zeroWindowsOut).toBeGreaterThanOrEqual(1);
    expect(probesIn).toBeGreaterThanOrEqual(1);
    // After resume() the window reopened by itself (a window update): the kernel sent data again.
    expect(dataIn).toBeGreaterThan(dataInAtResume);
  });

  it("probes the kernel's zero window while its reader sleeps, then delivers 4 MB intact", async () => {
    const t = await createNetnsTun();
    let zeroWindowsIn = 0;
    const tap = new TapLink(t.link, (tcp) => {
      if (tcp.flags & TCP_ACK && !(tcp.flags & (TCP_SYN | TCP_RST)) && tcp.window === 0) zeroWindowsIn++;
    });
    const { stack, events } = startStack(t, tap);
    const data = randomBytes(4 * MB);
    stack.createServer((s) => s.end(data)).listen(80);
    // A small receive buffer and a reader that starts 1 s late: the kernel's window closes.
    const r = await kernelClient(t, { host: t.stackAddr, port: 80, send: 0, shutdownAfterSend: false, rcvbuf: 32 * 1024, readDelayS: 1 });
    expect(r.received).toBe(data.length);
    expect(r.receivedSha256).toBe(sha256(data));
    expect(zeroWindowsIn).toBeGreaterThanOrEqual(1);
    // RFC 9293 §3.8.6.1: the sender keeps probing a zero window (our persist timer) instead of stalling.
    expect(stack.stats()['tcp.persist.probe']).toBeGreaterThanOrEqual(1);
    expect(stack.stats()['tcp.timeout'] ?? 0).toBe(0);
    expect(await waitFor(() => events.some((e) => e.to === 'TIME-WAIT'))).toBe(true);
  });

  it('sends one duplicate ACK per out-of-order segment, so the kernel repairs a loss by fast retransmit', async () => {
    const t = await createNetnsTun();
    const lossy = new DropAndBatchLink(t.link, { dropDataSegment: 20, holdDataSegments: 6 });
    const { stack } = startStack(t, lossy);
    let received: ReturnType<typeof hashInput> | undefined;
    stack.createServer((s) => (received = hashInput(s))).listen(80);
    const before = await kernelCounters(t);

    const r = await kernelClient(t, { host: t.stackAddr, port: 80, send: 300_000 });
    expect(await waitFor(() => received?.bytes() === r.sent)).toBe(true);
    expect(received!.hex()).toBe(r.sentSha256);

    // The held segments came in one batch, all beyond the hole: each got its own duplicate ACK.
    expect(lossy.heldDataSegments).toBe(6);
    expect(lossy.dupAcksForHeldBatch).toBe(6);
    // Three duplicate ACKs are the kernel's signal for fast retransmit (RFC 5681 §3.2).
    const after = await kernelCounters(t);
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    expect(delta('TcpExt:TCPRenoRecovery') + delta('TcpExt:TCPSackRecovery')).toBeGreaterThanOrEqual(1);
  });

  it('accepts a new kernel SYN on a 4-tuple we hold in TIME-WAIT (RFC 9293 §3.10.7.4, RFC 6191)', async () => {
    const t = await createNetnsTun();
    const { stack, events } = startStack(t);
    stack.createServer((s) => s.end('bye')).listen(80); // we close first: TIME-WAIT is ours
    const before = await kernelCounters(t);
    const first = await kernelClient(t, { host: t.stackAddr, port: 80, send: 100, shutdownAfterSend: false, bindPort: 40_000 });
    expect(first.received).toBe(3);
    expect(await waitFor(() => stack.connections().some((c) => c.state === 'TIME-WAIT'))).toBe(true);

    // The kernel side closed second, so it can reuse the port at once; its new ISN is higher
    // (Linux's ISN clock), so we must reopen instead of answering the SYN from TIME-WAIT.
    const second = await kernelClient(t, { host: t.stackAddr, port: 80, send: 100, shutdownAfterSend: false, bindPort: 40_000 });
    expect(second.localPort).toBe(40_000);
    expect(second.received).toBe(3);
    expect(stack.stats()['tcp.time-wait.reused']).toBe(1);
    const close = ['ESTABLISHED>FIN-WAIT-1', 'FIN-WAIT-1>FIN-WAIT-2', 'FIN-WAIT-2>TIME-WAIT'];
    expect(await waitFor(() => events.filter((e) => e.to === 'TIME-WAIT').length === 2)).toBe(true);
    expect(transitions(events, (c) => c.remotePort === 40_000)).toEqual([
      ...PASSIVE_OPEN,
      ...close,
      'TIME-WAIT>CLOSED',
      ...PASSIVE_OPEN,
      ...close,
    ]);
    // The kernel never had to retransmit its SYN: the first one opened the connection.
    const after = await kernelCounters(t);
    expect(after['Tcp:RetransSegs']! - before['Tcp:RetransSegs']!).toBe(0);
  });

  it('reports ECONNRESET when the kernel aborts (SO_LINGER 0), and the kernel sees ECONNRESET when we destroy()', async () => {
    const t = await createNetnsTun();
    const { stack, events } = startStack(t);
    const errors: Array<string | undefined> = [];
    stack
      .createServer((s) => {
        s.on('error', (e: Error & { code?: string }) => errors.push(e.code));
        s.resume();
      })
      .listen(80);
    const aborted = await kernelClient(t, { host: t.stackAddr, port: 80, send: 10_000, shutdownAfterSend: false, abortAfterSend: true, abortDelayS: 0.1 });
    expect(await waitFor(() => errors.length === 1)).toBe(true);
    expect(errors).toEqual(['ECONNRESET']);
    expect(transitions(events, (c) => c.remotePort === aborted.localPort)).toEqual([...PASSIVE_OPEN, 'ESTABLISHED>CLOSED']);

    // Our abort: destroy() on the first data sends RST (RFC 9293 §3.10.5); the kernel's recv() fails.
    stack.createServer((s) => s.once('data', () => s.destroy())).listen(81);
    const reset = await kernelClient(t, { host: t.stackAddr, port: 81, send: 1000, shutdownAfterSend: false, allowError: true });
    expect(reset.error).toBe('ECONNRESET');
    expect(transitions(events, (c) => c.remotePort === reset.localPort)).toEqual([...PASSIVE_OPEN, 'ESTABLISHED>CLOSED']);
    expect(stack.stats()['tcp.rst.out']).toBe(1);
    expect((await kernelSockets(t)).filter((s) => s.local === `${t.hostAddr}:${reset.localPort}`)).toEqual([]);
  });

  it('echoes for 30 concurrent kernel clients (300 KB each), all intact, all closed', async () => {
    const t = await createNetnsTun();
    const { stack } = startStack(t);
    stack.createServer((s) => s.pipe(s)).listen(7);
    const results = await Promise.all(
      Array.from({ length: 30 }, () => kernelClient(t, { host: t.stackAddr, port: 7, send: 300_000 })),
    );
    expect(new Set(results.map((r) => r.localPort)).size).toBe(30);
    for (const r of results) {
      expect(r.received).toBe(300_000);
      expect(r.receivedSha256).toBe(r.sentSha256);
    }
    expect(stack.stats()['tcp.passive-open']).toBe(30);
    expect(await waitFor(() => stack.connections().length === 0)).toBe(true);
  });

  it('negotiates the MSS on a 576-byte MTU: no segment exceeds the link, nothing is fragmented', async () => {
    const t = await createNetnsTun({ mtu: 576 });
    let largestOut = 0;
    let largestIn = 0;
    const tap = new TapLink(
      t.link,
      (_tcp, p) => (largestIn = Math.max(largestIn, p.length)),
      (_tcp, p) => (largestOut = Math.max(largestOut, p.length)),
    );
    const { stack } = startStack(t, tap);
    stack.createServer((s) => s.pipe(s)).listen(7);
    const r = await kernelClient(t, { host: t.stackAddr, port: 7, send: MB });
    expect(r.receivedSha256).toBe(r.sentSha256);
    expect(r.received).toBe(MB);
    // MSS 536 both ways (RFC 9293 §3.7.1): full segments are exactly 576 bytes.
    expect(largestOut).toBe(576);
    expect(largestIn).toBe(576);
    expect(stack.stats()['ip.frag.out']).toBe(0);
    expect(stack.stats()['ip.frag.in']).toBe(0);
  });

  it('interoperates without window scaling (kernel sysctl tcp_window_scaling=0): unscaled windows, 4 MB echo intact', async () => {
    const t = await createNetnsTun();
    expect((await t.exec(['sysctl', '-q', '-w', 'net.ipv4.tcp_window_scaling=0'])).code).toBe(0);
    let largestWindowOut = 0;
    const tap = new TapLink(t.link, undefined, (tcp) => (largestWindowOut = Math.max(largestWindowOut, tcp.window)));
    const { stack } = startStack(t, tap);
    let largestSndWnd = 0;
    stack
      .createServer((s) => {
        s.on('data', () => (largestSndWnd = Math.max(largestSndWnd, s.connection!.snd.wnd)));
        s.pipe(s);
      })
      .listen(7);
    const r = await kernelClient(t, { host: t.stackAddr, port: 7, send: 4 * MB });
    expect(r.received).toBe(4 * MB);
    expect(r.receivedSha256).toBe(r.sentSha256);
    // RFC 7323 §2.2: no option in the kernel's SYN, so neither side shifts. Our 1 MB buffer shows
    // as the largest unscaled window (65535), not as 1 MB >> 7 = 8192; the kernel's is taken as is.
    expect(largestWindowOut).toBe(65535);
    expect(largestSndWnd).toBeGreaterThan(0);
    expect(largestSndWnd).toBeLessThanOrEqual(65535);
  });

  it('delivers urgent data in line (RFC 6093): "abc", MSG_OOB "!", "def" reads as "abc!def"', async () => {
    const t = await createNetnsTun();
    const { stack } = startStack(t);
    let text = '';
    let ended = false;
    stack
      .createServer((s) => {
        s.setEncoding('latin1');
        s.on('data', (d: string) => (text += d));
        s.on('end', () => (ended = true));
      })
      .listen(7);
    const r = await kernelPython(
      t,
      `import socket
s = socket.create_connection(('${t.stackAddr}', 7), timeout=10)
s.sendall(b'abc')
s.send(b'!', socket.MSG_OOB)  # URG set, urgent pointer past the "!"
s.sendall(b'def')
s.shutdown(socket.SHUT_WR)
s.recv(1)  # until our FIN
s.close()`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await waitFor(() => ended)).toBe(true);
    expect(text).toBe('abc!def');
  });

  it('prints readable transition lines when NETSTACK_TRACE=1', async () => {
    const t = await createNetnsTun();
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    vi.stubEnv('NETSTACK_TRACE', '1');
    onTestFinished(() => {
      write.mockRestore();
      vi.unstubAllEnvs();
    });
    const { stack } = startStack(t); // no `trace` option: the environment turns it on
    stack.createServer((s) => s.pipe(s)).listen(80);
    const r = await kernelClient(t, { host: t.stackAddr, port: 80, send: 1000 });
    expect(await waitFor(() => stack.connections().length === 0)).toBe(true);
    write.mockRestore();

    const peer = `${t.hostAddr}:${r.localPort} > ${t.stackAddr}:80`;
    expect(lines.filter((l) => l.startsWith(`${t.hostAddr}:`))).toEqual([
      `${peer}  CLOSED -> SYN-RECEIVED  (SYN to listener :80)\n`,
      `${peer}  SYN-RECEIVED -> ESTABLISHED  (ACK of our SYN)\n`,
      `${peer}  ESTABLISHED -> CLOSE-WAIT  (FIN received)\n`,
      `${peer}  CLOSE-WAIT -> LAST-ACK  (close)\n`,
      `${peer}  LAST-ACK -> CLOSED  (ACK of our FIN)\n`,
    ]);
  });
});

// ───────────────────────── links that watch and bend the wire ─────────────────────────

/** TCP fields of an IPv4 packet, or undefined when it is not TCP. */
function tcpOf(p: Uint8Array): { seq: number; ack: number; flags: number; window: number; payload: number } | undefined {
  if (p[0]! >> 4 !== 4 || p[9] !== 6) return undefined;
  const ihl = (p[0]! & 0x0f) * 4;
  const total = (p[2]! << 8) | p[3]!;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const dataOffset = (p[ihl + 12]! >> 4) * 4;
  return {
    seq: v.getUint32(ihl + 4),
    ack: v.getUint32(ihl + 8),
    flags: p[ihl + 13]!,
    window: v.getUint16(ihl + 14),
    payload: total - ihl - dataOffset,
  };
}

const TCP_ACK = 0x10;
const TCP_RST = 0x04;
const TCP_SYN = 0x02;

type TcpView = NonNullable<ReturnType<typeof tcpOf>>;

/** A transparent Link that shows every TCP segment going in (from the kernel) and out (from us). */
class TapLink implements Link {
  constructor(
    private readonly inner: Link,
    private readonly onIn: (tcp: TcpView, packet: Uint8Array) => void = () => {},
    private readonly onOut: (tcp: TcpView, packet: Uint8Array) => void = () => {},
  ) {}

  get mtu(): number {
    return this.inner.mtu;
  }

  onReceive(handler: PacketBatchHandler): void {
    this.inner.onReceive((packets) => {
      for (const p of packets) {
        const tcp = tcpOf(p);
        if (tcp) this.onIn(tcp, p);
      }
      handler(packets);
    });
  }

  send(packets: Uint8Array[]): void {
    for (const p of packets) {
      const tcp = tcpOf(p);
      if (tcp) this.onOut(tcp, p);
    }
    this.inner.send(packets);
  }

  close(): void {
    this.inner.close();
  }
}

/**
 * A Link between the TUN device and the stack that loses one incoming data segment and then
 * hands the next few data segments to the stack as one batch — a burst arriving behind a
 * hole, as it does when the TUN queue overflows. It counts the pure duplicate ACKs the stack
 * sends while it processes that batch.
 */
class DropAndBatchLink implements Link {
  heldDataSegments = 0;
  dupAcksForHeldBatch = 0;
  private dataSegments = 0;
  private hole: number | undefined;
  private held: Uint8Array[] = [];
  private releasing = false;
  private handler: PacketBatchHandler | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly inner: Link,
    private readonly opts: { dropDataSegment: number; holdDataSegments: number },
  ) {
    inner.onReceive((packets) => this.receive(packets));
  }

  get mtu(): number {
    return this.inner.mtu;
  }

  onReceive(handler: PacketBatchHandler): void {
    this.handler = handler;
  }

  private receive(packets: Uint8Array[]): void {
    const { dropDataSegment: drop, holdDataSegments: hold } = this.opts;
    let pass: Uint8Array[] = [];
    for (const p of packets) {
      const tcp = tcpOf(p);
      const n = tcp && tcp.payload > 0 ? ++this.dataSegments : undefined;
      if (n === drop) {
        this.hole = tcp!.seq; // lost
      } else if (n !== undefined && n > drop && n <= drop + hold) {
        this.held.push(p);
        this.heldDataSegments++;
        if (this.heldDataSegments === hold) {
          this.deliver(pass);
          pass = [];
          this.release();
        } else {
          // Bounded: if the kernel stops sending before the batch is complete, deliver what we have.
          this.releaseTimer ??= setTimeout(() => this.release(), 200);
        }
      } else if (this.held.length > 0) {
        this.held.push(p); // keep the order: whatever arrives while holding goes with the batch
      } else {
        pass.push(p);
      }
    }
    this.deliver(pass);
  }

  private deliver(batch: Uint8Array[]): void {
    if (batch.length > 0) this.handler?.(batch);
  }

  private release(): void {
    clearTimeout(this.releaseTimer);
    const batch = this.held;
    this.held = [];
    if (batch.length === 0) return;
    this.releasing = true;
    try {
      this.deliver(batch);
    } finally {
      this.releasing = false;
    }
  }

  send(packets: Uint8Array[]): void {
    if (this.releasing && this.hole !== undefined) {
      for (const p of packets) {
        const tcp = tcpOf(p);
        if (tcp && tcp.payload === 0 && tcp.flags === TCP_ACK && tcp.ack === this.hole) this.dupAcksForHeldBatch++;
      }
    }
    this.inner.send(packets);
  }

  close(): void {
    clearTimeout(this.releaseTimer);
    this.inner.close();
  }
}

/** The namespace kernel's TCP counters as "TcpExt:Name" and "Tcp:Name" (/proc/net is per network namespace). */
async function kernelCounters(t: NetnsTun): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const file of ['/proc/net/netstat', '/proc/net/snmp']) {
    const r = await t.exec(['cat', file]);
    const lines = r.stdout.split('\n');
    // Pairs of lines: "Prefix: Name1 Name2 ..." then "Prefix: value1 value2 ...".
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      if (names[0] !== 'TcpExt:' && names[0] !== 'Tcp:') continue;
      for (let j = 1; j < names.length; j++) out[names[0] + names[j]!] = Number(values[j]);
    }
  }
  return out;
}
