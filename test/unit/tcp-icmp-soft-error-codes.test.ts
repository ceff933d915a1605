/**
 * Which error a connection that times out after an ICMP soft error reports (RFC 1122 §4.2.3.9:
 * TCP should tell the application "the cause of the failure"). The errno for each message is the
 * one Linux's icmp_err_convert gives: the unreachable codes that name a network (0, 6, 9, 11)
 * give ENETUNREACH, the other non-refusing codes EHOSTUNREACH, Time Exceeded EHOSTUNREACH and
 * Parameter Problem EPROTO. Each is a soft error while the handshake goes on: the SYN is
 * retransmitted as usual, and only the timeout ends the attempt.
 */
import { describe, expect, it } from 'vitest';
import { script, scriptHost } from '../helpers/script.js';

const [UNREACHABLE, TIME_EXCEEDED, PARAMETER_PROBLEM] = [3, 11, 12];

const cases: Array<[string, number, number, string]> = [
  ['net unreachable', UNREACHABLE, 0, 'ENETUNREACH'],
  ['host unreachable', UNREACHABLE, 1, 'EHOSTUNREACH'],
  ['source route failed', UNREACHABLE, 5, 'EHOSTUNREACH'],
  ['destination network unknown', UNREACHABLE, 6, 'ENETUNREACH'],
  ['destination host unknown', UNREACHABLE, 7, 'EHOSTUNREACH'],
  ['network administratively prohibited', UNREACHABLE, 9, 'ENETUNREACH'],
  ['host administratively prohibited', UNREACHABLE, 10, 'EHOSTUNREACH'],
  ['network unreachable for TOS', UNREACHABLE, 11, 'ENETUNREACH'],
  ['host unreachable for TOS', UNREACHABLE, 12, 'EHOSTUNREACH'],
  ['communication administratively prohibited', UNREACHABLE, 13, 'EHOSTUNREACH'],
  ['time exceeded in transit', TIME_EXCEEDED, 0, 'EHOSTUNREACH'],
  ['parameter problem', PARAMETER_PROBLEM, 0, 'EPROTO'],
  // Code 2 of Parameter Problem ("bad length") is not Destination Unreachable's code 2 (protocol
  // unreachable): a soft error, not a refusal. Likewise an undefined Time Exceeded code 3.
  ['parameter problem, bad length', PARAMETER_PROBLEM, 2, 'EPROTO'],
  ['time exceeded with an undefined code 3', TIME_EXCEEDED, 3, 'EHOSTUNREACH'],
];

/** The message Linux's strerror gives each errno, as the error reports it (lower case, as Node's). */
const MESSAGES: Record<string, string> = {
  ENETUNREACH: 'network is unreachable',
  EHOSTUNREACH: 'no route to host',
  EPROTO: 'protocol error',
  ETIMEDOUT: 'connection timed out',
};

/**
 * connect() with one SYN retransmission (RTO 1 s): the SYN at 0, ICMP errors (quoting it) after
 * the first SYN and after the retransmission, which times out at 3 s. Returns the socket's events.
 */
async function attempt(first: Array<[number, number]>, second: Array<[number, number]> = []) {
  const h = scriptHost({ tcp: { synRetries: 1, initialRto: 1000 } });
  const messages: string[] = [];
  let s = script(h).do((h) => h.connect().on('error', (e) => messages.push(e.message))).send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>');
  for (const [type, code] of first) s = s.icmp(type, code, { seq: 0 });
  s = s.state('SYN-SENT').quiet(999).after(1).send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 7>');
  for (const [type, code] of second) s = s.icmp(type, code, { seq: 0 });
  await s.quiet(1999).after(1).state('CLOSED');
  return { events: h.log.events, stats: h.stack.stats(), messages };
}

describe('the error an ICMP soft error leaves for a connection attempt that times out', () => {
  for (const [name, type, code, errno] of cases) {
    it(`${name} (type ${type} code ${code}): SYN retried, then ${errno}`, async () => {
      const { events, stats, messages } = await attempt([[type, code]]);
      expect(events).toEqual([`error ${errno}`, 'close']);
      expect(messages).toEqual([`connect ${errno}: ${MESSAGES[errno]}`]);
      expect(stats['tcp.icmp.soft-error']).toBe(1);
      expect(stats['tcp.icmp.refused'] ?? 0).toBe(0);
    });
  }

  it('without an ICMP error the same attempt ends with ETIMEDOUT', async () => {
    const { events, messages } = await attempt([]);
    expect(events).toEqual(['error ETIMEDOUT', 'close']);
    expect(messages).toEqual([`connect ETIMEDOUT: ${MESSAGES['ETIMEDOUT']}`]);
  });

  it('the last soft error is the one reported', async () => {
    const { events, stats } = await attempt([[UNREACHABLE, 0]], [[PARAMETER_PROBLEM, 0]]);
    expect(events).toEqual(['error EPROTO', 'close']);
    expect(stats['tcp.icmp.soft-error']).toBe(2);
  });
});

describe('port unreachable during a simultaneous open (SYN-RECEIVED after our own SYN)', () => {
  it('fails the connect() with ECONNREFUSED, as in SYN-SENT: the application asked for this connection', async () => {
    const h = scriptHost();
    await script(h)
      .do((h) => h.connect())
      .send('S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 7>')
      .recv('S 0:0(0) win 65535 <mss 1460,wscale 7>')
      .send('S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>')
      .state('SYN-RECEIVED')
      .icmp(UNREACHABLE, 3, { seq: 0 })
      .state('CLOSED')
      .quiet(60_000);
    expect(h.log.events).toEqual(['error ECONNREFUSED', 'close']);
    expect(h.stack.stats()['tcp.icmp.refused']).toBe(1);
  });
});
