/**
 * The packetdrill runner's own parts: the parser on tricky lines, the outbound matcher, the
 * runner's verdicts on small scripts (pass, fail with the reason, skip with the reason), and
 * the CLI's output and exit code.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPacketdrill } from '../../src/cli/packetdrill.js';
import type { OutSegment } from '../../src/packetdrill/packet.js';
import { decodeOptions, encodeOptions, matchOutbound } from '../../src/packetdrill/packet.js';
import type { PacketSpec, TcpOpt } from '../../src/packetdrill/parse.js';
import { PacketdrillSyntaxError, parsePacket, parseScript, parseSyscall, statements } from '../../src/packetdrill/parse.js';
import { readShellLine, runScript } from '../../src/packetdrill/runner.js';

describe('packetdrill parser', () => {
  it('resolves absolute, relative, any and range times; a blocking call counts both ends from the previous event', () => {
    const s = parseScript(`
      0.5 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
      +.25 close(3) = 0
      +0...0.2 read(4, ..., 10) = 10
      +.1 < . 1:1(0) ack 1 win 100
      * > . 1:1(0) ack 1
      2~2.5 > . 1:1(0) ack 1
      +1 < . 1:1(0) ack 1 win 100
    `);
    expect(s.events.map((e) => e.time)).toEqual([
      { kind: 'exact', start: 500 },
      { kind: 'exact', start: 750 },
      { kind: 'exact', start: 750, blockingEnd: 950 },
      { kind: 'exact', start: 850 },
      { kind: 'any', start: 850 },
      { kind: 'range', start: 2000, rangeEnd: 2500 },
      { kind: 'exact', start: 3000 },
    ]);
  });

  it('reads packets with every flag, ack/win/urg in any order, and options in order including nop and eol', () => {
    const p = parsePacket('in', 'SFRPU.EW 4294967295:9(10) win 65535 urg 3 ack 7 <mss 1460,sackOK,TS val 4294967295 ecr 0,nop,wscale 14,sack 1:2 3:4,eol>', 1);
    expect(p).toEqual({
      dir: 'in', flags: 'SFRPU.EW', start: 4294967295, end: 9, len: 10, win: 65535, urg: 3, ack: 7,
      options: [
        { kind: 'mss', value: 1460 }, { kind: 'sackOK' }, { kind: 'TS', val: 4294967295, ecr: 0 }, { kind: 'nop' },
        { kind: 'wscale', value: 14 }, { kind: 'sack', blocks: [[1, 2], [3, 4]] }, { kind: 'eol' },
      ],
    });
    expect(parsePacket('out', 'S. 0:0(0) ack 1 <...>', 1).options).toBe('any');
    expect(parsePacket('out', '- 0:0(0)', 1).flags).toBe('-');
  });

  it('refuses malformed packets with the line number', () => {
    const bad = ['S 0:10(9)', 'X 0:0(0)', 'SS 0:0(0)', 'S 0:0(0) ack 1', '. 0:0(0) win 70000', 'S 0:0(0) <mss 1460', 'S 0:0(0) <frob 3>', 'S 0:0(0) bogus'];
    for (const text of bad) {
      expect(() => parsePacket('in', text, 42), text).toThrow(PacketdrillSyntaxError);
      expect(() => parsePacket('in', text, 42), text).toThrow(/^line 42: /);
    }
  });

  it('reads system calls: ellipses, negative numbers, hex, ORed symbols, arrays, structs, strings, errno with text', () => {
    expect(parseSyscall('fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0x0', 1)).toEqual({
      name: 'fcntl', args: [{ t: 'int', v: 3 }, { t: 'sym', v: 'F_SETFL' }, { t: 'or', items: [{ t: 'sym', v: 'O_RDWR' }, { t: 'sym', v: 'O_NONBLOCK' }] }],
      result: { t: 'int', v: 0 }, errno: undefined,
    });
    const poll = parseSyscall('poll([{fd=4, events=POLLIN|POLLOUT, revents=0}], 1, -1) = 0', 1);
    expect(poll.args[0]).toEqual({ t: 'array', items: [{ t: 'struct', fields: [
      { name: 'fd', value: { t: 'int', v: 4 } },
      { name: 'events', value: { t: 'or', items: [{ t: 'sym', v: 'POLLIN' }, { t: 'sym', v: 'POLLOUT' }] } },
      { name: 'revents', value: { t: 'int', v: 0 } },
    ] }] });
    expect(poll.args[2]).toEqual({ t: 'int', v: -1 });
    const read = parseSyscall('read(4, ..., 1000) = -1 EAGAIN (Resource temporarily unavailable)', 1);
    expect(read).toMatchObject({ args: [{ t: 'int', v: 4 }, { t: 'ellipsis' }, { t: 'int', v: 1000 }], result: { t: 'int', v: -1 }, errno: 'EAGAIN' });
    expect(parseSyscall('write(4, "a\\"b", 3) = 3', 1).args[1]).toEqual({ t: 'str', v: 'a"b' });
    expect(() => parseSyscall('read(4, ..., 10) = 0 EAGAIN', 7)).toThrow(/line 7: errno EAGAIN needs the result -1/);
    expect(() => parseSyscall('read(4, ..., 10 = 0', 7)).toThrow(PacketdrillSyntaxError);
  });

  it('strips // and /* */ comments (not inside strings or shell commands) and joins lines while brackets are open', () => {
    const st = statements(['// header', '0 write(3, "//not a comment", 15) = 15 // trailing', '+0 poll([{fd=3,', '   events=POLLIN, /* in', 'a comment */ revents=0}], 1, 0) = 0', '`echo //x`'].join('\n'));
    expect(st.map((x) => ({ ...x, text: x.text.replace(/\s+/g, ' ') }))).toEqual([
      { line: 2, text: '0 write(3, "//not a comment", 15) = 15' },
      { line: 3, text: '+0 poll([{fd=3, events=POLLIN, revents=0}], 1, 0) = 0' },
      { line: 6, text: '`echo //x`' },
    ]);
  });

  it('keeps --options, shell lines and python blocks as what they are', () => {
    const s = parseScript('--tolerance_usecs=10000\n--ip_version=ipv4\n`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 %{\nassert x == 1\n}%\n');
    expect(s.options).toEqual([
      { name: 'tolerance_usecs', value: '10000', line: 1 },
      { name: 'ip_version', value: 'ipv4', line: 2 },
    ]);
    expect(s.events.map((e) => e.action.type)).toEqual(['shell', 'syscall', 'python']);
  });

  it('refuses time going backwards, a blocking packet, and an event without a time', () => {
    expect(() => parseScript('1 close(3) = 0\n0.5 close(3) = 0')).toThrow(/line 2: time goes backwards/);
    expect(() => parseScript('0...1 < . 1:1(0) ack 1')).toThrow(/line 1: only a system call can have a blocking time/);
    expect(() => parseScript('close(3) = 0')).toThrow(/line 1: an event must start with a time/);
  });
});

describe('packetdrill options and matching', () => {
  it('encodes options byte for byte as written (inbound SACK blocks relative to our ISN) and decodes outbound ones (SACK blocks as the script numbers its own data)', () => {
    const opts: TcpOpt[] = [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'wscale', value: 7 }, { kind: 'sack', blocks: [[1, 1001]] }];
    const bytes = encodeOptions(opts, 1000);
    expect([...bytes]).toEqual([2, 4, 5, 180, 1, 3, 3, 7, 5, 10, 0, 0, 3, 233, 0, 0, 7, 209, 0, 0]);
    expect(decodeOptions(bytes)).toEqual([...opts.slice(0, 3), { kind: 'sack', blocks: [[1001, 2001]] }]);
    expect(decodeOptions(encodeOptions(opts, 0))).toEqual(opts);
    expect(decodeOptions(Uint8Array.from([2, 4, 5]))).toBeUndefined();
    expect(decodeOptions(Uint8Array.from([1, 1, 4, 2]))).toEqual([{ kind: 'nop' }, { kind: 'nop' }, { kind: 'sackOK' }]);
  });

  const flow = { localPort: 8080, remotePort: 40000 };
  const seg = (o: Partial<OutSegment>): OutSegment => ({
    srcPort: 8080, dstPort: 40000, seq: 1001, ack: 1, flags: 0x10, win: 100, urg: 0, options: [], len: 0, checksumOk: true, ...o,
  });
  const want = (text: string): PacketSpec => parsePacket('out', text, 1);

  it('compares flags, sequence range, ack, and win/urg only when written; options in order unless <...>', () => {
    expect(matchOutbound(want('. 1:1(0) ack 1'), [seg({})], 1000, flow)).toEqual({ consumed: 1 });
    expect(matchOutbound(want('. 1:1(0) ack 1 win 100'), [seg({})], 1000, flow)).toEqual({ consumed: 1 });
    expect(matchOutbound(want('. 1:1(0) ack 1 win 99'), [seg({})], 1000, flow)).toEqual({ mismatch: 'win 100, expected 99' });
    expect(matchOutbound(want('. 1:1(0) ack 2'), [seg({})], 1000, flow)).toEqual({ mismatch: 'ack 1, expected 2' });
    expect(matchOutbound(want('P. 1:1(0) ack 1'), [seg({})], 1000, flow)).toEqual({ mismatch: 'flags ., expected P.' });
    expect(matchOutbound(want('. 2:2(0) ack 1'), [seg({})], 1000, flow)).toMatchObject({ mismatch: expect.stringMatching(/^sequence 1:1\(0\)/) });
    const withOpts = seg({ options: [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'wscale', value: 7 }] });
    expect(matchOutbound(want('. 1:1(0) ack 1 <mss 1460,nop,wscale 7>'), [withOpts], 1000, flow)).toEqual({ consumed: 1 });
    expect(matchOutbound(want('. 1:1(0) ack 1 <mss 1460,wscale 7>'), [withOpts], 1000, flow)).toMatchObject({ mismatch: expect.stringMatching(/^options/) });
    expect(matchOutbound(want('. 1:1(0) ack 1 <...>'), [withOpts], 1000, flow)).toEqual({ consumed: 1 });
    expect(matchOutbound(want('. 1:1(0) ack 1'), [withOpts], 1000, flow)).toMatchObject({ mismatch: expect.stringMatching(/^options/) });
    expect(matchOutbound(want('. 1:1(0) ack 1'), [seg({ checksumOk: false })], 1000, flow)).toEqual({ mismatch: 'the TCP checksum is wrong' });
    expect(matchOutbound(want('. 1:1(0) ack 1'), [seg({ dstPort: 1 })], 1000, flow)).toMatchObject({ mismatch: expect.stringMatching(/^ports/) });
  });

  it('joins consecutive contiguous segments for a line that expects a larger one, and no more', () => {
    const a = seg({ len: 1000 });
    const b = seg({ seq: 2001, len: 1000, flags: 0x18 });
    const c = seg({ seq: 3001, len: 1000 });
    expect(matchOutbound(want('P. 1:2001(2000) ack 1'), [a, b, c], 1000, flow)).toEqual({ consumed: 2 });
    expect(matchOutbound(want('. 1:1001(1000) ack 1'), [a, b, c], 1000, flow)).toEqual({ consumed: 1 });
    // A gap stops the join.
    expect(matchOutbound(want('. 1:2001(2000) ack 1'), [a, c], 1000, flow)).toMatchObject({ mismatch: expect.stringMatching(/^sequence 1:1001\(1000\)/) });
  });
});

const LISTEN = `
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1460>
   +0 > S. 0:0(0) ack 1 <mss 1460>
  +.1 < . 1:1(0) ack 1 win 65535
   +0 accept(3, ..., ...) = 4
`;

describe('packetdrill runner verdicts', () => {
  it('passes a script the stack follows', async () => {
    expect(await runScript(LISTEN + '+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n')).toEqual({ status: 'pass', reason: '' });
  });

  it('fails with the line, the expected and the actual packet, and the time', async () => {
    const r = await runScript(LISTEN + '+0 write(4, ..., 10) = 10\n+0 > P. 1:12(11) ack 1\n');
    expect(r.status).toBe('fail');
    expect(r.reason).toMatch(/^line 10 \(0\.100s\): expected > P\. 1:12\(11\) ack 1, but the stack sent > P\. 1:11\(10\) ack 1 win 65535 at 0\.100s/);
  });

  it('fails a packet sent outside the tolerance, and one nobody expected', async () => {
    const late = await runScript(LISTEN + '+0 write(4, ..., 10) = 10\n+.005 > P. 1:11(10) ack 1\n');
    expect(late.reason).toMatch(/was sent at 0\.100s, expected at 0\.105s \(tolerance 0\.004s\)/);
    const loose = await runScript('--tolerance_usecs=6000\n' + LISTEN + '+0 write(4, ..., 10) = 10\n+.005 > P. 1:11(10) ack 1\n');
    expect(loose.status).toBe('pass');
    const extra = await runScript(LISTEN + '+0 write(4, ..., 10) = 10\n');
    expect(extra.reason).toMatch(/the script ended, but the stack sent 1 packet\(s\) no line expected, first at 0\.100s: > P\. 1:11\(10\)/);
  });

  it('accepts an outbound packet at any time for *, and anywhere in a~b (but not outside it)', async () => {
    const delayed = LISTEN + '+0 < P. 1:11(10) ack 1 win 65535\n';
    expect((await runScript(delayed + '* > . 1:1(0) ack 11\n')).status).toBe('pass');
    expect((await runScript(delayed + '0.12~0.2 > . 1:1(0) ack 11\n')).status).toBe('pass');
    expect((await runScript(delayed + '0.15~0.2 > . 1:1(0) ack 11\n')).reason).toMatch(/was sent at 0\.140s, expected at 0\.150s~0\.200s/);
  });

  it('fails a wrong return value or errno, and a call that blocks without a blocking time', async () => {
    expect((await runScript(LISTEN + '+0 write(4, ..., 10) = 11\n+0 > P. 1:11(10) ack 1\n')).reason).toMatch(/write\(\) returned 10, expected 11/);
    expect((await runScript(LISTEN + '+0 read(4, ..., 10) = -1 EAGAIN (x)\n')).reason).toMatch(/read\(\) blocked; write it as a blocking call/);
    expect((await runScript(LISTEN + '+0...0.1 read(4, ..., 10) = 10\n')).reason).toMatch(/read\(4, \.\.\., 10\) = 10 had not returned by 0\.204s/);
  });

  it('skips what netstack cannot honour, with the reason, before running anything', async () => {
    expect(await runScript('`sysctl -q net.ipv4.tcp_ecn=1`\n' + LISTEN)).toEqual({
      status: 'skip',
      reason: expect.stringMatching(/^line 1: shell command `sysctl -q net\.ipv4\.tcp_ecn=1` \(shell lines are never executed; netstack reads only defaults\.sh and the sysctls tcp_sack, tcp_timestamps, tcp_syncookies, /),
    });
    expect((await runScript('--ip_version=ipv6\n' + LISTEN)).reason).toBe('--ip_version=ipv6 (netstack is IPv4 only)');
    expect((await runScript('--no_such_flag=1\n' + LISTEN)).reason).toBe('option --no_such_flag');
    expect((await runScript(LISTEN + '+0 sendfile(4, 5, ..., 10) = 10\n')).reason).toBe('line 9: system call sendfile()');
    expect((await runScript(LISTEN + '+0 setsockopt(4, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5) = 0\n')).reason).toBe('setsockopt IPPROTO_TCP TCP_CONGESTION');
    expect((await runScript(LISTEN + '+0 %{ assert tcpi_rto == 1000 }%\n')).status).toBe('skip');
  });

  it("reads Linux's sysctls for TCP's limits from a shell line, and nothing else", () => {
    const limits = (c: string) => {
      const r = readShellLine(c);
      return 'unsupported' in r ? undefined : r.limits;
    };
    expect(limits('sysctl -q net.ipv4.tcp_syncookies=2')).toEqual({ synCookies: 'always' });
    expect(limits('sysctl -q net.ipv4.tcp_syncookies=0; sysctl -w net.ipv4.tcp_max_tw_buckets=5')).toEqual({ synCookies: false, maxTimeWait: 5 });
    expect(limits('sysctl -q net.ipv4.tcp_orphan_retries=0')).toEqual({ orphanRetries: 8 }); // Linux: 0 means 8
    expect(limits('sysctl -q net.ipv4.tcp_sack=0')).toEqual({}); // a TCP setting, not a limit
    expect(limits('sysctl -q net.ipv4.tcp_syncookies=2; rm -rf /')).toBeUndefined();
  });

  it('a syntax error is a failure that names the line', async () => {
    expect(await runScript('0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < Q 0:0(0)\n')).toEqual({
      status: 'fail', reason: "syntax error: line 2: unknown TCP flag 'Q' in 'Q' (flags are S . P F R U E W -)",
    });
  });

  it('the linux profile (from defaults.sh) offers window scale 8, like Linux', async () => {
    const script = '`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1460,nop,wscale 7>\n+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>\n';
    expect((await runScript(script)).status).toBe('pass');
    expect((await runScript(script, { profile: 'netstack' })).reason).toMatch(/options <mss 1460,nop,wscale 7>, expected <mss 1460,nop,wscale 8>/);
  });
});

describe('netstack packetdrill (CLI)', () => {
  it('prints PASS/FAIL/SKIP per file and the totals, and exits 1 when one failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'packetdrill-'));
    const pass = join(dir, 'pass.pkt');
    const fail = join(dir, 'fail.pkt');
    const skip = join(dir, 'skip.pkt');
    writeFileSync(pass, LISTEN);
    writeFileSync(fail, LISTEN + '+0 > . 1:1(0) ack 1\n');
    writeFileSync(skip, '%{ x = 1 }%\n' + LISTEN);
    const lines: string[] = [];
    expect(await runPacketdrill({ files: [pass, fail, skip] }, (l) => lines.push(l))).toBe(1);
    expect(lines[0]).toBe(`PASS ${pass}`);
    expect(lines[1]).toMatch(new RegExp(`^FAIL ${fail} — line 9 \\(0\\.100s\\): expected > \\. 1:1\\(0\\) ack 1, but the stack sent nothing`));
    expect(lines[2]).toBe(`SKIP ${skip} — line 1: %{ python }% assertions`);
    expect(lines[3]).toBe('1 passed, 1 failed, 1 skipped');
    const ok: string[] = [];
    expect(await runPacketdrill({ files: [pass, skip] }, (l) => ok.push(l))).toBe(0);
    expect(ok[2]).toBe('1 passed, 0 failed, 1 skipped');
  });
});
