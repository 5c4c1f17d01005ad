import { beijingDay } from '../lib/wechat/datacube.ts';
import { userSourceOf } from './datacube.ts';
import { INITIAL_HISTORY, SCENES, type ChurnEvent, type Population, type Scene } from './population.ts';

/**
 * Every change the simulator makes to an account's followers, in the order made, with where each follow came
 * from and what became of its push. Together with the initial population's own history it is the one source
 * of the datacube figures, so WeChat's counts and the changes a test can list never disagree.
 *
 * Chaos runs make ~700k changes, so entries live in typed columns (14 bytes each), not objects; the openid
 * is derived from the user's index when an entry is read.
 */

export const PUSH_OUTCOMES = ['not-pushed', 'pending', 'delivered', 'dropped', 'failed'] as const;
/** `pending` while the push is still being delivered; `not-pushed` when no callback URL was set. */
export type PushOutcome = (typeof PUSH_OUTCOMES)[number];

/** One line of GET /__sim/accounts/APPID/ledger. */
export interface LedgerEntry {
  /** Position in the ledger, from 0. */
  readonly seq: number;
  readonly appid: string;
  readonly openid: string;
  readonly type: 'subscribe' | 'unsubscribe';
  /** Unix seconds: the push's CreateTime. */
  readonly at: number;
  /** subscribe_scene of the follow, or for an unfollow of the follow it ends. */
  readonly scene: Scene;
  /** The datacube user_source that scene counts under. */
  readonly userSource: number;
  /** The QR code's key (EventKey without `qrscene_`), or null for a follow not through a QR code. */
  readonly qrScene: string | null;
  /** The user had followed the account before that follow. */
  readonly returning: boolean;
  readonly push: PushOutcome;
}

/** The changes of one China day: per scene (SCENES order), follows and the unfollows of follows through it. */
export interface LedgerDay {
  readonly day: number;
  readonly subscribes: Uint32Array;
  readonly unsubscribes: Uint32Array;
  /** Followers at the end of the day. */
  readonly followers: number;
}

const UNSUBSCRIBE = 1;
const RETURNING = 2;
const OUTCOME_SHIFT = 2;
const SCENE_COUNT = SCENES.length;
const SCENE_INDEX = new Map<Scene, number>(SCENES.map((scene, i) => [scene, i]));

/** The initial population's history per day: fixed once built. */
interface History {
  readonly firstDay: number;
  /** [(day - firstDay) * SCENE_COUNT + scene] */
  readonly subscribes: Uint32Array;
  readonly unsubscribes: Uint32Array;
  /** Followers at the end of each day. */
  readonly followers: Uint32Array;
}

export class Ledger {
  private count = 0;
  private users = new Uint32Array(1024);
  private times = new Uint32Array(1024);
  private scenes = new Uint8Array(1024);
  private flags = new Uint8Array(1024);
  /** 0: no QR code; n: qrKeys[n - 1]. Many follows come through one QR code, so each key is kept once. */
  private qrs = new Uint32Array(1024);
  private readonly qrKeys: string[] = [];
  private readonly qrIds = new Map<string, number>();
  private history: History | undefined;

  constructor(private readonly population: Population) {}

  get size(): number {
    return this.count;
  }

  /** Appends a change the population just applied; returns its seq. */
  record(event: ChurnEvent, push: 'not-pushed' | 'pending'): number {
    if (this.count === this.users.length) this.grow();
    const seq = this.count++;
    const { source } = event;
    this.users[seq] = event.index;
    this.times[seq] = event.createTime;
    this.scenes[seq] = SCENE_INDEX.get(source.scene) ?? 0;
    this.flags[seq] = (event.type === 'unsubscribe' ? UNSUBSCRIBE : 0) | (source.returning ? RETURNING : 0) | (PUSH_OUTCOMES.indexOf(push) << OUTCOME_SHIFT);
    this.qrs[seq] = source.qrScene === undefined ? 0 : this.qrId(source.qrScene);
    return seq;
  }

  /** What became of the push of change `seq`. */
  settle(seq: number, outcome: PushOutcome): void {
    const flags = this.flags[seq] ?? 0;
    this.flags[seq] = (flags & ((1 << OUTCOME_SHIFT) - 1)) | (PUSH_OUTCOMES.indexOf(outcome) << OUTCOME_SHIFT);
  }

  entry(seq: number, appid: string): LedgerEntry {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.count) throw new RangeError(`no ledger entry ${seq}`);
    const flags = this.flags[seq] ?? 0;
    const scene = SCENES[this.scenes[seq] ?? 0] ?? 'ADD_SCENE_OTHERS';
    const qr = this.qrs[seq] ?? 0;
    return {
      seq,
      appid,
      openid: this.population.openidOf(this.users[seq] ?? 0),
      type: (flags & UNSUBSCRIBE) === 0 ? 'subscribe' : 'unsubscribe',
      at: this.times[seq] ?? 0,
      scene,
      userSource: userSourceOf(scene),
      qrScene: qr === 0 ? null : (this.qrKeys[qr - 1] ?? null),
      returning: (flags & RETURNING) !== 0,
      push: PUSH_OUTCOMES[flags >>> OUTCOME_SHIFT] ?? 'pending',
    };
  }

  /**
   * Entries from `from` up to the size when reading began, as JSON lines in chunks of up to `chunkLines`
   * lines, for streaming; changes made while it streams are left for the next read (`from`).
   */
  *lines(appid: string, from = 0, chunkLines = 10_000): Generator<string> {
    const size = this.count;
    for (let start = from; start < size; start += chunkLines) {
      let chunk = '';
      const end = Math.min(size, start + chunkLines);
      for (let seq = start; seq < end; seq += 1) chunk += `${JSON.stringify(this.entry(seq, appid))}\n`;
      yield chunk;
    }
  }

  /**
   * The changes of each China day from `first` to `last` (day numbers), the initial population's included,
   * and the followers at the end of each. The entries are scanned on every call: a few milliseconds for the
   * largest ledgers, and datacube calls are few.
   */
  days(first: number, last: number): LedgerDay[] {
    const span = Math.max(0, last - first + 1);
    const subscribes = new Uint32Array(span * SCENE_COUNT);
    const unsubscribes = new Uint32Array(span * SCENE_COUNT);
    const history = this.historyByDay();
    const historyDays = history.followers.length;
    const historyLast = history.firstDay + historyDays - 1;
    const endOf = (day: number): number => (day < history.firstDay ? 0 : history.followers[Math.min(day, historyLast) - history.firstDay] ?? 0);
    let followers = endOf(first - 1);
    for (let day = Math.max(first, history.firstDay); day <= Math.min(last, historyLast); day += 1) {
      const from = (day - history.firstDay) * SCENE_COUNT;
      subscribes.set(history.subscribes.subarray(from, from + SCENE_COUNT), (day - first) * SCENE_COUNT);
      unsubscribes.set(history.unsubscribes.subarray(from, from + SCENE_COUNT), (day - first) * SCENE_COUNT);
    }
    for (let seq = 0; seq < this.count; seq += 1) {
      const day = beijingDay(this.times[seq] ?? 0);
      const unsubscribe = ((this.flags[seq] ?? 0) & UNSUBSCRIBE) !== 0;
      if (day < first) {
        followers += unsubscribe ? -1 : 1;
      } else if (day <= last) {
        const slot = (day - first) * SCENE_COUNT + (this.scenes[seq] ?? 0);
        const counts = unsubscribe ? unsubscribes : subscribes;
        counts[slot] = (counts[slot] ?? 0) + 1;
      }
    }
    const days: LedgerDay[] = [];
    for (let i = 0; i < span; i += 1) {
      const dayFollows = subscribes.subarray(i * SCENE_COUNT, (i + 1) * SCENE_COUNT);
      const dayUnfollows = unsubscribes.subarray(i * SCENE_COUNT, (i + 1) * SCENE_COUNT);
      followers += sum(dayFollows) - sum(dayUnfollows);
      days.push({ day: first + i, subscribes: dayFollows, unsubscribes: dayUnfollows, followers });
    }
    return days;
  }

  /** Built on first use (one pass over the initial users, ~0.1 s for 10M) and kept: that history never changes. */
  private historyByDay(): History {
    if (this.history !== undefined) return this.history;
    const firstDay = beijingDay(INITIAL_HISTORY.from);
    const dayCount = beijingDay(INITIAL_HISTORY.to) - firstDay + 1;
    const subscribes = new Uint32Array(dayCount * SCENE_COUNT);
    const unsubscribes = new Uint32Array(dayCount * SCENE_COUNT);
    this.population.forEachInitialChange((type, at, scene) => {
      const slot = (beijingDay(at) - firstDay) * SCENE_COUNT + (SCENE_INDEX.get(scene) ?? 0);
      const counts = type === 'subscribe' ? subscribes : unsubscribes;
      counts[slot] = (counts[slot] ?? 0) + 1;
    });
    const followers = new Uint32Array(dayCount);
    let running = 0;
    for (let i = 0; i < dayCount; i += 1) {
      running += sum(subscribes.subarray(i * SCENE_COUNT, (i + 1) * SCENE_COUNT)) - sum(unsubscribes.subarray(i * SCENE_COUNT, (i + 1) * SCENE_COUNT));
      followers[i] = running;
    }
    this.history = { firstDay, subscribes, unsubscribes, followers };
    return this.history;
  }

  private qrId(key: string): number {
    let id = this.qrIds.get(key);
    if (id === undefined) {
      this.qrKeys.push(key);
      id = this.qrKeys.length;
      this.qrIds.set(key, id);
    }
    return id;
  }

  private grow(): void {
    const capacity = this.users.length * 2;
    const grown = <T extends Uint32Array | Uint8Array>(column: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(column);
      return next;
    };
    this.users = grown(this.users, (n) => new Uint32Array(n));
    this.times = grown(this.times, (n) => new Uint32Array(n));
    this.scenes = grown(this.scenes, (n) => new Uint8Array(n));
    this.flags = grown(this.flags, (n) => new Uint8Array(n));
    this.qrs = grown(this.qrs, (n) => new Uint32Array(n));
  }
}

function sum(counts: Uint32Array): number {
  let total = 0;
  for (const n of counts) total += n;
  return total;
}
