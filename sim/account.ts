import { decodeEncodingAESKey } from '../lib/wechat/crypto.ts';
import { deriveCredentials, type SimCredentials } from './credentials.ts';
import { Ledger } from './ledger.ts';
import { AccountLimits, type FaultSettings } from './limits.ts';
import { Population } from './population.ts';
import { Rng, deriveKey32 } from './random.ts';

/** One simulated Official Account: its credentials, its followers, its quotas and faults. */

export interface AccountSettings {
  readonly seed: number;
  /** 1-based number within the run. */
  readonly number: number;
  readonly followers: number;
  readonly faults: FaultSettings;
  readonly userGetDailyQuota: number;
}

export interface PushCounters {
  events: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  failed: number;
  attempts: number;
}

export class SimAccount {
  readonly number: number;
  readonly credentials: SimCredentials;
  readonly aesKey: Buffer;
  readonly population: Population;
  /** Every change made to the followers since the start. */
  readonly ledger: Ledger;
  readonly limits: AccountLimits;
  /** Only verified accounts may call datacube; others get 48001 (wechat-protocol.md §11). */
  verified = true;
  /** Separate streams, so injecting busy answers does not change which users churn picks. */
  readonly churnRng: Rng;
  readonly faultRng: Rng;
  readonly pushRng: Rng;
  readonly pushes: PushCounters = { events: 0, delivered: 0, dropped: 0, duplicated: 0, failed: 0, attempts: 0 };
  /** A background churn tick is skipped while the previous one still pushes. */
  churning = false;

  constructor(settings: AccountSettings) {
    const { seed, number } = settings;
    this.number = number;
    this.credentials = deriveCredentials(seed, number);
    this.aesKey = decodeEncodingAESKey(this.credentials.encodingAESKey);
    // Odd accounts are bound to an Open Platform account, so their users carry a unionid and even ones do not.
    this.population = new Population({ seed, account: number, followers: settings.followers, unionid: number % 2 === 1 });
    this.ledger = new Ledger(this.population);
    this.limits = new AccountLimits(settings.faults, { '/cgi-bin/user/get': settings.userGetDailyQuota });
    this.churnRng = new Rng(deriveKey32('churn', seed, number));
    this.faultRng = new Rng(deriveKey32('faults', seed, number));
    this.pushRng = new Rng(deriveKey32('pushes', seed, number));
  }

  get appid(): string {
    return this.credentials.appid;
  }
}
