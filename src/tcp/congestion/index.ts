/**
 * The congestion controllers by name, for configuration (`netstack up --cc`). CUBIC is the default,
 * as in Linux; NewReno is the RFC 5681 / RFC 6582 baseline.
 */
import type { CongestionFactory } from '../congestion.js';
import { newReno } from '../congestion.js';
import { cubic } from './cubic.js';

export const CONGESTION_CONTROLS = { cubic, newreno: newReno } as const satisfies Record<string, CongestionFactory>;

export type CongestionControlName = keyof typeof CONGESTION_CONTROLS;
