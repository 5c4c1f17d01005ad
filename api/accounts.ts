import { callbackModeOf, type CallbackMode, type Config } from '../lib/config.ts';
import { sendJson, type Routes } from '../lib/http-server.ts';
import { getQuery } from './get.ts';

export interface AccountsAnswer {
  readonly accounts: readonly {
    readonly appid: string;
    readonly mode: CallbackMode;
    readonly snapshotCron: string | null;
    readonly reconcileCron: string | null;
  }[];
  /** The zone report days are counted in unless a request names another (WXSYNC_REPORT_TZ). */
  readonly tz: string;
}

/** The configured accounts as an operator may see them: never a secret, token or key. */
export function accountsAnswer(config: Config): AccountsAnswer {
  return {
    accounts: config.accounts.map((a) => ({ appid: a.appid, mode: callbackModeOf(a), snapshotCron: a.snapshotCron ?? null, reconcileCron: a.reconcileCron ?? null })),
    tz: config.reports.tz,
  };
}

/** `GET /api/accounts`: what the dashboard's account picker lists. */
export function accountRoutes(config: Config): Routes {
  const answer = accountsAnswer(config);
  return [['/api/accounts', (req, res) => {
    if (getQuery(req, res, '/api/accounts') !== undefined) sendJson(res, 200, answer);
    return Promise.resolve();
  }]];
}
