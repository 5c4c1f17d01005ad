/**
 * The follower list as a stream of user/get pages (wechat-protocol.md §2). Nothing is accumulated: a
 * 10M-follower account costs one page of memory. The list ends on the first of §2.1's terminal
 * conditions — no `data`, `count` 0, no openids, empty `next_openid` — so the extra end-of-list call
 * WeChat needs is made exactly once, and the loop never relies on `total` (it changes during a crawl).
 */
import { isWxsyncError } from '../errors.ts';
import type { UserGetAnswer } from './client.ts';
import { USER_GET_API } from './client.ts';
import { badAnswer, withDetails } from './errors.ts';

/** What the pager needs of a client: WechatClient satisfies it; tests may pass a fake. */
export interface FollowerSource {
  userGet(nextOpenid: string): Promise<UserGetAnswer>;
}

export interface FollowerPage {
  /** 0-based number of the user/get call in this crawl (the snapshot contract's `page`). */
  readonly page: number;
  /** The next_openid sent for this page ('' for the first). */
  readonly cursor: string;
  /** The next_openid WeChat answered ('' when it sent none). */
  readonly nextOpenid: string;
  readonly total: number;
  /** Non-empty openids, in WeChat's order. Empty on the end-of-list answer. */
  readonly openids: readonly string[];
  /** This answer ended the list: no further call follows. */
  readonly last: boolean;
}

/** Where to pick a crawl up: the `cursor` and `page` of a stop error's details. */
export interface ResumePoint {
  readonly cursor: string;
  readonly page: number;
}

/**
 * Yields every answer of the crawl, the end-of-list one included (it carries the final `total`), and
 * returns after the page marked `last`. Any error is rethrown with `details.cursor` and `details.page`:
 * call again with `from` set to them to finish the crawl later (as far as WeChat still honours the cursor).
 */
export async function* followerPages(source: FollowerSource, from: ResumePoint = { cursor: '', page: 0 }): AsyncGenerator<FollowerPage, void, undefined> {
  let cursor = from.cursor;
  for (let page = from.page; ; page += 1) {
    let answer: UserGetAnswer;
    try {
      answer = await source.userGet(cursor);
    } catch (error) {
      throw isWxsyncError(error) ? withDetails(error, { cursor, page }) : error;
    }
    const last = !answer.hasData || answer.count === 0 || answer.openids.length === 0 || answer.nextOpenid === '';
    // A cursor that does not move would make the crawl loop forever on one page.
    if (!last && answer.nextOpenid === cursor) {
      throw badAnswer(USER_GET_API, 'next_openid repeats the cursor sent', { cursor, page });
    }
    yield { page, cursor, nextOpenid: answer.nextOpenid, total: answer.total, openids: answer.openids, last };
    if (last) return;
    cursor = answer.nextOpenid;
  }
}
