/**
 * Profiles for openids the store has never seen: each published page is looked up in ClickHouse and the
 * unknown openids go through batchget into wx.user.profiles. It runs beside the crawl, a bounded number of
 * pages behind, so enrichment never slows paging and memory stays a few pages whatever the follower count.
 * A failure stops enrichment for the run (it must not burn the batchget quota) but never the snapshot:
 * the snapshot is the truth, profiles are detail, and the next snapshot retries whoever is still unknown.
 */
import type { ClickHouseClient } from '../../lib/clickhouse.ts';
import { OPENID, compact } from '../../lib/contracts/fields.ts';
import { USER_PROFILE_VERSION, encodeUserProfile, type UserProfile } from '../../lib/contracts/user-profile.ts';
import { describeError } from '../../lib/errors.ts';
import type { OutRecord, RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import { batchGetProfiles, type ProfileSource } from '../../lib/wechat/batchget.ts';
import type { WechatUserProfile } from '../../lib/wechat/client.ts';

/** Which of `openids` the store already knows (has a profile or an event for). */
export type KnownOpenids = (appid: string, openids: readonly string[]) => Promise<ReadonlySet<string>>;

export function clickhouseKnownOpenids(client: ClickHouseClient, database: string): KnownOpenids {
  return async (appid, openids) => {
    // Openids are inlined rather than bound: 10,000 of them would overflow a server's URL limit, and
    // each is checked against the openid pattern (letters, digits, '_', '-') so none can break the quoting.
    const safe = openids.filter((o) => OPENID.test(o));
    if (safe.length === 0) return new Set();
    const list = `[${safe.map((o) => `'${o}'`).join(',')}]`;
    const result = await client.query({
      query: `WITH ${list} AS ids
        SELECT openid FROM ${database}.user_profiles WHERE appid = {appid:String} AND openid_key IN arrayMap(x -> sipHash64(x), ids) AND has(ids, openid)
        UNION DISTINCT
        SELECT openid FROM ${database}.followers WHERE appid = {appid:String} AND openid_key IN arrayMap(x -> sipHash64(x), ids) AND has(ids, openid)`,
      query_params: { appid },
      // A page of 10,000 inlined openids is ~330 KB, above the 256 KiB default.
      clickhouse_settings: { max_query_size: '4194304' },
      format: 'JSONEachRow',
    });
    const rows = await result.json<{ openid: string }>();
    return new Set(rows.map((r) => r.openid));
  };
}

export function profileRecord(appid: string, profile: WechatUserProfile, fetchedAt: number): OutRecord {
  // Only the contract's fields: batchget also answers language and groupid, which wx.user.profiles does not carry.
  const record = compact<UserProfile>({
    v: USER_PROFILE_VERSION,
    appid,
    openid: profile.openid,
    subscribe: profile.subscribe,
    subscribeTime: profile.subscribeTime,
    unionid: profile.unionid,
    subscribeScene: profile.subscribeScene,
    qrScene: profile.qrScene,
    qrSceneStr: profile.qrSceneStr,
    tagidList: profile.tagidList,
    remark: profile.remark,
    fetchedAt,
  });
  return { key: `${appid}:${profile.openid}`, value: encodeUserProfile(record) };
}

export interface EnricherOptions {
  readonly appid: string;
  readonly source: ProfileSource;
  readonly known: KnownOpenids;
  readonly producer: RecordProducer;
  readonly topic: string;
  readonly concurrency: number;
  readonly logger: Logger;
  readonly now: () => number;
  /** Pages waiting before `add` waits: the memory bound. */
  readonly maxQueued?: number;
}

export class Enricher {
  /** Profiles published by this run. */
  published = 0;
  failure: string | undefined;
  private readonly queue: (readonly string[])[] = [];
  private readonly maxQueued: number;
  private worker: Promise<void> | undefined;
  private wakeAdder: (() => void) | undefined;

  constructor(private readonly options: EnricherOptions) {
    this.maxQueued = options.maxQueued ?? 2;
  }

  /** Queues one page's openids; waits while the queue is full. */
  async add(openids: readonly string[]): Promise<void> {
    if (this.failure !== undefined || openids.length === 0) return;
    // A failing worker empties the queue and wakes this loop.
    while (this.queue.length >= this.maxQueued) {
      await new Promise<void>((resolve) => { this.wakeAdder = resolve; });
    }
    this.queue.push(openids);
    this.worker ??= this.work();
  }

  /** Waits until every queued page is enriched (or enrichment failed). */
  async drain(): Promise<void> {
    while (this.worker !== undefined) await this.worker;
  }

  private async work(): Promise<void> {
    const { appid, source, known, producer, topic, concurrency, logger, now } = this.options;
    try {
      for (let openids = this.queue.shift(); openids !== undefined && this.failure === undefined; openids = this.queue.shift()) {
        this.wakeAdder?.();
        try {
          const knownSet = await known(appid, openids);
          const unknown = openids.filter((o) => !knownSet.has(o));
          if (unknown.length === 0) continue;
          const profiles = await batchGetProfiles(source, unknown, { concurrency });
          const fetchedAt = now();
          await producer.send(topic, profiles.map((p) => profileRecord(appid, p, fetchedAt)));
          this.published += profiles.length;
        } catch (error) {
          this.failure = describeError(error);
          logger.warn({ appid, err: error }, 'enrichment stopped for this snapshot; the next one retries the unknown openids');
        }
      }
    } finally {
      this.queue.length = 0;
      this.worker = undefined;
      this.wakeAdder?.();
    }
  }
}
