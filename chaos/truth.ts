/**
 * WeChat's truth over time, as the chaos run saw the simulator make it: each account's followers when the run
 * began and every follow and unfollow after that, in the order made. It answers whether a correction the
 * reconcile emitted says something the truth never held at the time the correction carries.
 */
export type FollowState = 'subscribe' | 'unsubscribe';

interface Change {
  readonly state: FollowState;
  /** Unix seconds, as the simulator's CreateTime. */
  readonly at: number;
}

export class TruthHistory {
  private readonly initial = new Set<string>();
  private readonly changes = new Map<string, Change[]>();

  /** The followers an account had before any change was recorded. */
  begin(appid: string, openids: Iterable<string>): void {
    for (const openid of openids) this.initial.add(key(appid, openid));
  }

  /** One change, in the order the simulator made them (CreateTime never goes back). */
  record(appid: string, openid: string, state: FollowState, at: number): void {
    const k = key(appid, openid);
    let list = this.changes.get(k);
    if (list === undefined) {
      list = [];
      this.changes.set(k, list);
    }
    list.push({ state, at });
  }

  /** The user's history, for a report: the state before the run, then each change. */
  describe(appid: string, openid: string): string {
    const k = key(appid, openid);
    const changes = (this.changes.get(k) ?? []).map((c) => `${c.state} ${new Date(c.at * 1000).toISOString()}`);
    return [this.initial.has(k) ? 'following at the start' : 'not following at the start', ...changes].join(', ');
  }

  /**
   * Whether a correction's `state` contradicts the truth: the user never held it from the second its time `atMs`
   * falls in (WeChat's times are whole seconds, and a user can follow and leave within one) to `untilMs`, when
   * WeChat's answer behind the correction was known. A reconcile dates a correction no later than the moment it
   * asked WeChat (the snapshot's start, or the second before a batchget call), so that any push WeChat stamps
   * afterwards outranks it; WeChat answers a moment later, and the state it reports may begin in between.
   */
  contradicts(appid: string, openid: string, state: FollowState, atMs: number, untilMs: number = atMs): boolean {
    const k = key(appid, openid);
    const first = Math.floor(atMs / 1000);
    const last = Math.floor(untilMs / 1000);
    let held: FollowState = this.initial.has(k) ? 'subscribe' : 'unsubscribe';
    const during = new Set<FollowState>();
    for (const change of this.changes.get(k) ?? []) {
      if (change.at > last) break;
      if (change.at >= first) {
        during.add(held);
        during.add(change.state);
      }
      held = change.state;
    }
    during.add(held);
    return !during.has(state);
  }
}

function key(appid: string, openid: string): string {
  return `${appid}\n${openid}`;
}
