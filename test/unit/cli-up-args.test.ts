import { describe, expect, it } from 'vitest';
import { CliError, UP_DEFAULTS, validateUpArgs } from '../../src/cli/up.js';
import type { UpArgs } from '../../src/cli/up.js';
import { formatMac } from '../../src/link/ethernet.js';

const base: UpArgs = { ...UP_DEFAULTS, mtu: '1500', port: '80' };

function error(args: Partial<UpArgs>): string {
  try {
    validateUpArgs({ ...base, ...args });
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('netstack up --tap / --mac options', () => {
  it('TUN by default; --tap alone picks no MAC (a random one is made at start)', () => {
    expect(validateUpArgs(base)).toMatchObject({ tap: false, mac: undefined });
    expect(validateUpArgs({ ...base, tap: true })).toMatchObject({ tap: true, mac: undefined });
  });

  it('takes a unicast --mac with --tap', () => {
    const cfg = validateUpArgs({ ...base, tap: true, mac: '02:00:5E:10:00:02' });
    expect(formatMac(cfg.mac!)).toBe('02:00:5e:10:00:02');
  });

  it('refuses --mac without --tap, malformed, group and all-zero addresses, in one sentence', () => {
    expect(error({ mac: '02:00:00:00:00:01' })).toBe('--mac only applies to a TAP device: add --tap');
    expect(error({ tap: true, mac: 'nope' })).toBe('--mac must be six hex octets like 02:00:00:00:00:02 (got "nope")');
    expect(error({ tap: true, mac: '02:00:00:00:00' })).toMatch(/^--mac must be six hex octets/);
    expect(error({ tap: true, mac: '01:00:5e:00:00:01' })).toBe(
      '--mac 01:00:5e:00:00:01 is not a unicast address (its first octet must be even, and not all zeros)',
    );
    expect(error({ tap: true, mac: '00:00:00:00:00:00' })).toMatch(/is not a unicast address/);
  });
});

describe('netstack up --offload', () => {
  it('on by default, off when asked or in TAP mode (TUN only)', () => {
    expect(validateUpArgs(base).offload).toBe(true);
    expect(validateUpArgs({ ...base, offload: 'off' }).offload).toBe(false);
    expect(validateUpArgs({ ...base, offload: 'on', tap: true }).offload).toBe(false);
  });

  it('refuses anything but on or off, in one sentence', () => {
    expect(error({ offload: 'maybe' })).toBe('--offload must be on or off (got "maybe")');
  });
});
