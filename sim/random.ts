import { createHash } from 'node:crypto';

/**
 * Deterministic randomness for the simulator. Everything a run shows (credentials, openids, follow
 * times, churn choices) derives from --seed, so two runs with the same flags serve the same accounts.
 */

/** A 32-bit integer finaliser (lowbias32): cheap enough to call millions of times per second. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32 bits derived from a label: used to key the fast integer functions once per account. */
export function deriveKey32(...parts: readonly (string | number)[]): number {
  return createHash('sha256').update(parts.join('\u0000')).digest().readUInt32BE(0);
}

/** Characters of `alphabet` derived from a label; the modulo bias is irrelevant for test identifiers. */
export function deriveChars(alphabet: string, length: number, ...parts: readonly (string | number)[]): string {
  let out = '';
  for (let block = 0; out.length < length; block += 1) {
    const digest = createHash('sha256').update(`${parts.join('\u0000')}\u0000${block}`).digest();
    for (const byte of digest) {
      if (out.length === length) break;
      out += alphabet[byte % alphabet.length] ?? '';
    }
  }
  return out;
}

/** A seeded generator (mulberry32). Not cryptographic: it only has to be reproducible. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  next32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next32() / 0x1_0000_0000;
  }

  /** A uniform integer in [0, bound), for bound up to 2^32. */
  below(bound: number): number {
    return Math.floor(this.float() * bound);
  }

  chance(probability: number): boolean {
    return probability > 0 && this.float() < probability;
  }
}

export const OPENID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
export const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const HEX = '0123456789abcdef';
