/**
 * The packetdrill runner with SACK and timestamps: the linux profile turns both on as Linux's
 * defaults do, TS values are mapped between script and live as packetdrill maps them (outbound
 * TSval loosely, outbound TSecr exactly, inbound TSecr to the live TSval it names), shell lines
 * are read for the sysctls netstack has, and the netstack profile keeps both off.
 */
import { describe, expect, it } from 'vitest';
import { readShellLine, runScript } from '../../src/packetdrill/runner.js';
import { TimestampMapping } from '../../src/packetdrill/timestamps.js';

/** A passive open as Linux's scripts write it, SYN with sackOK and TS. */
const LINUX_OPEN = `
\`../common/defaults.sh\`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
   +0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257 <nop,nop,TS val 200 ecr 700>
   +0 accept(3, ..., ...) = 4
`;

describe('packetdrill TS mapping (google/packetdrill run_packet.c)', () => {
  it('reads outbound TSvals relative to the first one and checks them only with a tick', () => {
    const loose = new TimestampMapping(0, false);
    expect(loose.outbound({ val: 700, ecr: 100 }, { val: 123456, ecr: 100 }, 4000)).toBeUndefined();
    expect(loose.toScript(123556)).toBe(800);
    expect(loose.outbound({ val: 5, ecr: 100 }, { val: 999999, ecr: 100 }, 4000)).toBeUndefined();

    const ticked = new TimestampMapping(1000, false);
    expect(ticked.outbound({ val: 700, ecr: 100 }, { val: 0xfffffff0, ecr: 100 }, 4000)).toBeUndefined();
    // 100 ms later at 1 ms per tick: 800 in script space (across the 32-bit wrap of the live clock).
    expect(ticked.outbound({ val: 800, ecr: 100 }, { val: 0x54, ecr: 100 }, 4000)).toBeUndefined();
    expect(ticked.outbound({ val: 804, ecr: 100 }, { val: 0x54, ecr: 100 }, 4000)).toBeUndefined();
    expect(ticked.outbound({ val: 805, ecr: 100 }, { val: 0x54, ecr: 100 }, 4000)).toMatch(/TS val 800, expected 805 \(5 ticks of 1000 µs is more than the tolerance of 4000 µs\)/);
    expect(ticked.outbound({ val: 795, ecr: 100 }, { val: 0x54, ecr: 100 }, 4000)).toMatch(/TS val 800, expected 795/);
  });

  it('compares the outbound TSecr exactly: the stack echoes the script TSval it holds as TS.Recent (RFC 7323 §4.3)', () => {
    const m = new TimestampMapping(0, false);
    expect(m.outbound({ val: 1, ecr: 100 }, { val: 9, ecr: 101 }, 4000)).toBe('TS ecr 101, expected 100');
    expect(m.outbound({ val: 1, ecr: 0xffffffff }, { val: 9, ecr: 0xffffffff }, 4000)).toBeUndefined();
  });

  it('maps an inbound TSecr to the live TSval of the outbound line that showed it, else interpolates only when scaled', () => {
    const m = new TimestampMapping(0, false);
    expect(m.inboundEcr(700)).toEqual({ error: expect.stringMatching(/no outbound line showed TS val 700/) });
    m.outbound({ val: 700, ecr: 100 }, { val: 5000, ecr: 100 }, 4000);
    m.outbound({ val: 900, ecr: 100 }, { val: 5150, ecr: 100 }, 4000);
    expect(m.inboundEcr(700)).toBe(5000);
    expect(m.inboundEcr(900)).toBe(5150); // exactly what that line showed, not 5000 + 200
    expect(m.inboundEcr(800)).toEqual({ error: expect.stringMatching(/--tcp_ts_ecr_scaled/) });
    expect(m.inboundEcr(0)).toBe(0); // "nothing to echo" is sent as written

    const scaled = new TimestampMapping(0, true);
    expect(scaled.inboundEcr(700)).toEqual({ error: expect.any(String) }); // no baseline yet
    scaled.outbound({ val: 700, ecr: 100 }, { val: 5000, ecr: 100 }, 4000);
    expect(scaled.inboundEcr(800)).toBe(5100);
    expect(scaled.inboundEcr(600)).toBe(4900);
  });
});

describe('packetdrill shell lines (read, never run)', () => {
  it("reads defaults.sh and the tcp_sack / tcp_timestamps sysctls in the forms Linux's scripts use", () => {
    expect(readShellLine('`../common/defaults.sh`')).toEqual({ defaults: true, tcp: {}, limits: {} });
    expect(readShellLine('`./defaults.sh; sysctl -q net.ipv4.tcp_sack=0`')).toEqual({ defaults: true, tcp: { sack: false }, limits: {} });
    expect(readShellLine('`./defaults.sh\nsysctl -q -w net.ipv4.tcp_timestamps=0 && sysctl net.ipv4.tcp_sack=1`')).toEqual({
      defaults: true,
      tcp: { timestamps: false, sack: true },
      limits: {},
    });
    expect(readShellLine('`./set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0 /proc/sys/net/ipv4/tcp_sack=0`')).toEqual({
      defaults: false,
      tcp: { timestamps: false, sack: false },
      limits: {},
    });
  });

  it('anything else is a reason to skip, naming the command', () => {
    expect(readShellLine('`sysctl -q net.ipv4.tcp_ecn=1`')).toEqual({ unsupported: expect.stringMatching(/^shell command `sysctl -q net\.ipv4\.tcp_ecn=1`/) });
    expect(readShellLine('`./defaults.sh; ip link set dev tun0 mtu 1200`')).toEqual({ unsupported: expect.stringMatching(/`ip link set dev tun0 mtu 1200`/) });
    expect(readShellLine('`./set_sysctls.py /proc/sys/net/ipv4/tcp_sack=0 /proc/sys/net/ipv4/tcp_ecn=1`')).toEqual({ unsupported: expect.any(String) });
    expect(readShellLine('`sysctl -q net.ipv4.tcp_sack=x`')).toEqual({ unsupported: expect.any(String) });
  });
});

describe('packetdrill profiles and timestamps in scripts', () => {
  it("the linux profile answers a Linux SYN with Linux's SYN-ACK: <mss 1460,sackOK,TS val .. ecr 100,nop,wscale 8>", async () => {
    expect(await runScript(LINUX_OPEN)).toEqual({ status: 'pass', reason: '' });
    const wrongEcr = await runScript(LINUX_OPEN.replace('TS val 700 ecr 100', 'TS val 700 ecr 99'));
    expect(wrongEcr.status).toBe('fail');
    expect(wrongEcr.reason).toMatch(/line 8 .*options: TS ecr 100, expected 99/);
  });

  it('data segments carry <nop,nop,TS val ecr> with the echo of the newest in-order TSval, and TSvals advance with the clock', async () => {
    const script = `--tcp_ts_tick_usecs=1000\n${LINUX_OPEN}
   +0 write(4, ..., 1000) = 1000
   +0 > P. 1:1001(1000) ack 1 <nop,nop,TS val 800 ecr 200>
 +.05 < . 1:1(0) ack 1001 win 257 <nop,nop,TS val 250 ecr 800>
   +0 < P. 1:1001(1000) ack 1001 win 257 <nop,nop,TS val 260 ecr 800>
 +.04 > . 1001:1001(0) ack 1001 <nop,nop,TS val 890 ecr 260>
`;
    expect(await runScript(script)).toEqual({ status: 'pass', reason: '' });
    const late = await runScript(script.replace('TS val 890 ecr 260', 'TS val 900 ecr 260'));
    expect(late.reason).toMatch(/TS val 890 ecr 260> at 0\.190s \(options: TS val 890, expected 900/);
    // Without a tick the TSval is not compared (packetdrill's default), the TSecr still is.
    expect((await runScript(script.replace('--tcp_ts_tick_usecs=1000\n', '').replace('TS val 890 ecr 260', 'TS val 1 ecr 260'))).status).toBe('pass');
    expect((await runScript(script.replace('TS val 890 ecr 260', 'TS val 890 ecr 250'))).reason).toMatch(/TS ecr 260, expected 250/);
  });

  it('an inbound TSecr that no outbound line showed fails the script, as in packetdrill', async () => {
    const r = await runScript(LINUX_OPEN.replace('TS val 200 ecr 700', 'TS val 200 ecr 701'));
    expect(r).toEqual({ status: 'fail', reason: expect.stringMatching(/^line 9 \(0\.100s\): cannot map the inbound TS ecr 701/) });
    expect((await runScript('--tcp_ts_ecr_scaled\n' + LINUX_OPEN.replace('TS val 200 ecr 700', 'TS val 200 ecr 701'))).status).toBe('pass');
  });

  it('a sysctl line turns timestamps off: the SYN-ACK is <mss 1460,nop,nop,sackOK,nop,wscale 8>, as Linux sends it', async () => {
    const script = LINUX_OPEN.replace('defaults.sh`', 'defaults.sh; sysctl -q net.ipv4.tcp_timestamps=0`')
      .replace('<mss 1460,sackOK,TS val 700 ecr 100,nop,wscale 8>', '<mss 1460,nop,nop,sackOK,nop,wscale 8>')
      .replace('<nop,nop,TS val 200 ecr 700>', '');
    expect(await runScript(script)).toEqual({ status: 'pass', reason: '' });
    const late = `${LINUX_OPEN}\`sysctl -q net.ipv4.tcp_sack=0\`\n`;
    expect(await runScript(late)).toEqual({ status: 'skip', reason: expect.stringMatching(/a sysctl after the script started/) });
  });

  it('the netstack profile keeps SACK and timestamps off, and says so when a line expects them', async () => {
    const r = await runScript(LINUX_OPEN, { profile: 'netstack' });
    expect(r).toEqual({ status: 'fail', reason: expect.stringMatching(/^line 8: expects a sackOK option, but this run has net\.ipv4\.tcp_sack=0 \(the netstack profile/) });
    const noSack = LINUX_OPEN.replace('sackOK,TS val 700 ecr 100', 'nop,nop,TS val 700 ecr 100');
    expect((await runScript(noSack, { profile: 'netstack' })).reason).toMatch(/^line 8: expects a TS option, but this run has net\.ipv4\.tcp_timestamps=0/);
  });

  it("outbound SACK blocks are in the script's own numbers: an out-of-order segment is reported as it was written", async () => {
    const script = `${LINUX_OPEN}
   +0 < P. 1001:2001(1000) ack 1 win 257 <nop,nop,TS val 300 ecr 700>
   +0 > . 1:1(0) ack 1 <nop,nop,TS val 700 ecr 200,nop,nop,sack 1001:2001>
   +0 < P. 1:1001(1000) ack 1 win 257 <nop,nop,TS val 301 ecr 700>
   +0 > . 1:1(0) ack 2001 <nop,nop,TS val 700 ecr 301>
`;
    expect(await runScript(script)).toEqual({ status: 'pass', reason: '' });
  });
});
