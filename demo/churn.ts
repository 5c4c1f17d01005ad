import type { ChurnRequest } from '../sim/churn.ts';

/**
 * The demo's steady churn: every second, each account gains about one follower per 5,000 it has and loses four for
 * every five it gains. Half the follows come through today's three QR campaigns, the busiest first, so the campaign
 * split of the report has something to tell; the others come through whatever the simulator draws (search, a
 * shared card, older QR codes), and some of those are former followers coming back.
 */

export const CAMPAIGNS = ['spring-promo', 'store-poster', 'wechat-article'] as const;
/** Which campaign a second's campaign follows go to, ten seconds at a time: 50%, 30%, 20%. */
const CAMPAIGN_ROTATION = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2] as const;
const FOLLOWERS_PER_FOLLOW = 5000;

/** The churn requests of second `tick` for an account that has `followers` now; none that would change nothing. */
export function churnTick(followers: number, tick: number): ChurnRequest[] {
  const follows = Math.max(1, Math.round(followers / FOLLOWERS_PER_FOLLOW));
  const unfollows = Math.min(followers, Math.round(follows * 0.8));
  const viaCampaign = Math.ceil(follows / 2);
  const campaign = CAMPAIGNS[CAMPAIGN_ROTATION[tick % CAMPAIGN_ROTATION.length] ?? 0];
  const requests: ChurnRequest[] = [{ subscribe: viaCampaign, unsubscribe: 0, qrScene: campaign }];
  if (follows - viaCampaign + unfollows > 0) requests.push({ subscribe: follows - viaCampaign, unsubscribe: unfollows });
  return requests;
}
