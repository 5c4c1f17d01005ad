import type { Logger } from '../lib/logger.ts';
import type { SimAccount } from './account.ts';
import type { SimClock } from './clock.ts';
import type { AccountLimits } from './limits.ts';
import type { PushMode, Pusher } from './push.ts';
import type { TokenAuthority } from './tokens.ts';

/** Everything the API and admin handlers share: one per running simulator. */
export interface SimState {
  readonly clock: SimClock;
  readonly tokens: TokenAuthority;
  /** In account order. */
  readonly accounts: readonly SimAccount[];
  readonly byAppid: ReadonlyMap<string, SimAccount>;
  readonly pusher: Pusher;
  /** Counts calls that name no known account (bad token, unknown appid). */
  readonly unattributed: AccountLimits;
  /** Defaults for per-account faults and the push target; the admin API can change the latter at run time. */
  callback: { base: string | undefined; mode: PushMode };
  readonly logger: Logger;
}
