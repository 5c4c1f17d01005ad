import { HEX, OPENID_ALPHABET, deriveChars, deriveKey32, mix32, type Rng } from './random.ts';

/**
 * The follower model of one simulated account: who follows, since when, through which scene.
 *
 * It has to hold 10M followers in little memory, so no per-user JS objects or strings exist. A user is
 * an index (0, 1, 2… in order of first follow); a keyed 32-bit Feistel permutation maps the index to a
 * position, the user's place in /user/get order, and the openid is an encoding of that position. So an
 * openid decodes back to its user without a Map, and user/get order is stable yet unrelated to follow
 * time: a new follower lands anywhere in the list, as on WeChat.
 */

export const PAGE_SIZE = 10_000;
export const OPENID_LENGTH = 28;

export const SCENES = [
  'ADD_SCENE_SEARCH',
  'ADD_SCENE_ACCOUNT_MIGRATION',
  'ADD_SCENE_PROFILE_CARD',
  'ADD_SCENE_QR_CODE',
  'ADD_SCENE_PROFILE_LINK',
  'ADD_SCENE_PROFILE_ITEM',
  'ADD_SCENE_PAID',
  'ADD_SCENE_WECHAT_ADVERTISEMENT',
  'ADD_SCENE_REPRINT',
  'ADD_SCENE_LIVESTREAM',
  'ADD_SCENE_CHANNELS',
  'ADD_SCENE_OTHERS',
] as const;
export type Scene = (typeof SCENES)[number];
const QR_SCENE = SCENES.indexOf('ADD_SCENE_QR_CODE');
/** Percent weights per scene, in SCENES order; QR codes are common for accounts that run campaigns. */
const SCENE_WEIGHTS = [30, 5, 10, 25, 8, 5, 2, 5, 3, 2, 3, 2] as const;

/** States of a user index; 0 is a slot not yet given to anyone. */
const FOLLOWING = 1;
const FORMER = 2;

/** Initial follow times lie in the 8 years before 2024-01-01, so a run's population does not depend on the wall clock. */
const REFERENCE_EPOCH = 1_704_067_200;
const HISTORY_SECONDS = 8 * 365 * 86_400;
/** Unix seconds from which to which (inclusive) the follows and unfollows of the initial population lie. */
export const INITIAL_HISTORY = { from: REFERENCE_EPOCH - HISTORY_SECONDS, to: REFERENCE_EPOCH } as const;
/** New users' positions wait in a small sorted list and are merged into the big one in batches. */
const PENDING_MERGE_AT = 4096;
const BODY_LENGTH = 22;
/** Body slots that carry the position; the others carry a keyed checksum, so forged openids are refused. */
const VALUE_SLOTS = [1, 4, 8, 12, 15, 19] as const;
/** Per body slot: which 6-bit piece of the position (or -1), and which filler symbol (or -1). */
const SLOT_VALUE = new Int8Array(BODY_LENGTH).fill(-1);
const SLOT_FILL = new Int8Array(BODY_LENGTH).fill(-1);
for (let slot = 0, v = 0, f = 0; slot < BODY_LENGTH; slot += 1) {
  if (slot === VALUE_SLOTS[v]) SLOT_VALUE[slot] = v++;
  else SLOT_FILL[slot] = f++;
}
const REMARKS = ['VIP', '重点客户', 'wholesale', '老用户 "A"', '待回访'] as const;
const TAG_SETS: readonly (readonly number[])[] = [[2], [100], [100, 101], [128, 2], [101]];
const SCENE_STRINGS = ['promo_spring', 'store_0021', 'event-2024', 'poster_b', 'card'] as const;

export interface PopulationOptions {
  readonly seed: number;
  /** 1-based account number within the run; part of every derived key. */
  readonly account: number;
  readonly followers: number;
  /** Users who followed once and left before the run (default followers/20); resubscribes draw from them. */
  readonly formerFollowers?: number;
  /** Whether the account is bound to an Open Platform account, so users carry a unionid. */
  readonly unionid?: boolean;
}

export interface QrSource {
  readonly qrScene: number;
  readonly qrSceneStr: string;
  readonly ticket: string;
}

/** What follows `qrscene_` in a QR follow's EventKey: the string scene, or else the number. */
export function qrKey(source: QrSource): string {
  return source.qrSceneStr === '' ? String(source.qrScene) : source.qrSceneStr;
}

/** Where a follow came from: for an unfollow, the follow it ends. */
export interface FollowSource {
  readonly scene: Scene;
  /** The QR code's key (see qrKey), for a follow through a parametrised QR code. */
  readonly qrScene: string | undefined;
  /** The user had followed the account before this follow. */
  readonly returning: boolean;
}

export interface UserRecord {
  readonly index: number;
  readonly openid: string;
  readonly following: boolean;
  /** Unix seconds of the latest follow. */
  readonly subscribeTime: number;
  readonly scene: Scene;
  readonly qr: QrSource | undefined;
  readonly language: string;
  readonly remark: string;
  readonly tagIds: readonly number[];
  readonly unionid: string | undefined;
}

export interface ChurnEvent {
  readonly type: 'subscribe' | 'unsubscribe';
  readonly index: number;
  readonly openid: string;
  /** Unix seconds. */
  readonly createTime: number;
  /** The user had followed before: WeChat gives them their old openid back. */
  readonly resubscribe: boolean;
  readonly scene: Scene | undefined;
  /** `qrscene_<scene>` for a follow through a parametrised QR code. */
  readonly eventKey: string | undefined;
  readonly ticket: string | undefined;
  readonly source: FollowSource;
}

export interface SubscribeChoice {
  /** Probability that a subscribe brings back a former follower rather than a new user. */
  readonly resubscribeRate: number;
  /** Probability that a subscribe comes through a parametrised QR code. */
  readonly qrRate: number;
  /** Every subscribe comes through this scene (no draw); the default draws one. */
  readonly scene?: Scene | undefined;
  /** Every subscribe comes through the QR code with this qr_scene_str (the scene is then ADD_SCENE_QR_CODE). */
  readonly qrScene?: string | undefined;
}

const CHAR_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < OPENID_ALPHABET.length; i += 1) CHAR_VALUE[OPENID_ALPHABET.charCodeAt(i)] = i;
const ALPHABET_BYTES = Buffer.from(OPENID_ALPHABET, 'latin1');

export class Population {
  readonly account: number;
  readonly openidPrefix: string;
  private readonly prefixBytes: Buffer;
  private readonly unionidPrefix: string | undefined;
  private readonly keys: readonly number[];
  private readonly kCheck: number;
  private readonly kFill: number;
  private readonly kAttr: number;

  /** Everyone in the population the run started with, and how many of them followed. */
  private readonly initialUsers: number;
  private readonly initialFollowers: number;
  private users = 0;
  private followers = 0;
  private capacity = 0;
  private state = new Uint8Array(0);
  private scene = new Uint8Array(0);
  private subscribeTime = new Uint32Array(0);
  /** CreateTime of each user's latest simulated event (0: none yet). */
  private lastEventTime = new Uint32Array(0);
  /** One bit per user: their latest follow brought them back. */
  private returned = new Uint8Array(0);
  /** Users whose latest follow came through a QR code a churn request named, with its qr_scene_str. */
  private readonly namedQr = new Map<number, string>();
  /** Positions of every user ever seen, sorted; `pending` holds the newest ones until the next merge. */
  private sorted = new Uint32Array(0);
  private sortedLength = 0;
  private pending: number[] = [];
  /** Indices of former followers, unordered, for drawing resubscribes. */
  private former = new Uint32Array(0);
  private formerLength = 0;

  constructor(options: PopulationOptions) {
    const { seed, account } = options;
    this.account = account;
    this.keys = [0, 1, 2, 3].map((round) => deriveKey32('feistel', seed, account, round));
    this.kCheck = deriveKey32('check', seed, account);
    this.kFill = deriveKey32('fill', seed, account);
    this.kAttr = deriveKey32('attributes', seed, account);
    // Real openids of one account share their first characters, e.g. "otvxTs…".
    this.openidPrefix = `o${deriveChars(OPENID_ALPHABET, 5, 'openid-prefix', seed, account)}`;
    this.prefixBytes = Buffer.from(this.openidPrefix, 'latin1');
    this.unionidPrefix = options.unionid === true ? `o${deriveChars(OPENID_ALPHABET, 4, 'unionid-prefix', seed)}` : undefined;

    const followers = options.followers;
    const formerFollowers = options.formerFollowers ?? Math.floor(followers / 20);
    const total = followers + formerFollowers;
    if (!Number.isSafeInteger(total) || followers < 0 || formerFollowers < 0 || total > 0xffff_ffff) {
      throw new RangeError(`population size out of range: ${followers} followers, ${formerFollowers} former followers`);
    }
    this.ensureCapacity(total);
    this.sorted = new Uint32Array(total + PENDING_MERGE_AT);
    this.users = total;
    this.followers = followers;
    this.initialUsers = total;
    this.initialFollowers = followers;
    const attr = this.kAttr;
    for (let index = 0; index < total; index += 1) {
      const h = mix32(index ^ attr);
      this.state[index] = index < followers ? FOLLOWING : FORMER;
      this.scene[index] = weightedScene(h % 100);
      this.subscribeTime[index] = initialSubscribeTime(h);
      this.sorted[index] = this.permute(index);
    }
    this.sortedLength = total;
    this.sorted.subarray(0, total).sort();
    this.former = new Uint32Array(Math.max(formerFollowers, 1024));
    for (let index = followers; index < total; index += 1) this.former[this.formerLength++] = index;
  }

  get followerCount(): number {
    return this.followers;
  }

  /** Everyone who ever followed, current followers included. */
  get userCount(): number {
    return this.users;
  }

  openidOf(index: number): string {
    const buffer = Buffer.allocUnsafe(OPENID_LENGTH);
    this.writeOpenid(this.permute(index), buffer, 0);
    return buffer.toString('latin1');
  }

  /** The user an openid belongs to, or undefined when it is malformed, another account's, or never issued. */
  indexOf(openid: string): number | undefined {
    const position = this.decodePosition(openid);
    if (position === undefined) return undefined;
    const index = this.unpermute(position);
    return index < this.users ? index : undefined;
  }

  /** The position of a user in /user/get order: the cursor a next_openid stands for. */
  positionOf(index: number): number {
    return this.permute(index);
  }

  isFollowing(index: number): boolean {
    return this.state[index] === FOLLOWING;
  }

  user(index: number): UserRecord {
    if (index < 0 || index >= this.users) throw new RangeError(`no user ${index}`);
    const h = mix32(mix32(index ^ this.kAttr) ^ 0x27d4eb2f);
    const sceneIndex = this.scene[index] ?? 0;
    const subscribeTime = this.subscribeTime[index] ?? 0;
    const tagIds = h % 5 === 0 ? (TAG_SETS[(h >>> 3) % TAG_SETS.length] ?? []) : [];
    return {
      index,
      openid: this.openidOf(index),
      following: this.state[index] === FOLLOWING,
      subscribeTime,
      scene: SCENES[sceneIndex] ?? 'ADD_SCENE_OTHERS',
      qr: sceneIndex === QR_SCENE ? this.qrSourceOf(index, subscribeTime) : undefined,
      language: (h >>> 8) % 100 < 85 ? 'zh_CN' : (h >>> 8) % 100 < 93 ? 'en' : 'zh_TW',
      remark: (h >>> 16) % 12 === 0 ? (REMARKS[(h >>> 20) % REMARKS.length] ?? '') : '',
      tagIds,
      unionid: this.unionidPrefix === undefined ? undefined : this.unionidPrefix + this.fillChars(index ^ 0x6a09e667, 23),
    };
  }

  /**
   * Writes the positions of up to `out.length` followers that come after `after` in list order (-1: from
   * the start) into `out`, and returns how many it wrote.
   */
  collect(after: number, out: Uint32Array): number {
    const sorted = this.sorted;
    const sortedLength = this.sortedLength;
    const pending = this.pending;
    const state = this.state;
    let i = upperBound(sorted, sortedLength, after);
    let j = upperBoundArray(pending, after);
    let n = 0;
    while (n < out.length) {
      let position: number;
      const a = i < sortedLength ? (sorted[i] as number) : -1;
      const b = j < pending.length ? (pending[j] as number) : -1;
      if (a >= 0 && (b < 0 || a < b)) {
        position = a;
        i += 1;
      } else if (b >= 0) {
        position = b;
        j += 1;
      } else {
        break;
      }
      if (state[this.unpermute(position)] === FOLLOWING) out[n++] = position;
    }
    return n;
  }

  /** Writes the 28 ASCII bytes of the openid at `position` into `target` at `offset`. */
  writeOpenid(position: number, target: Buffer, offset: number): void {
    this.prefixBytes.copy(target, offset);
    const check = mix32(position ^ this.kCheck) & 0xf;
    const h1 = mix32(position ^ this.kFill);
    const h2 = mix32(h1 ^ 0x9e3779b9);
    const h3 = mix32(h2 ^ 0x85ebca6b);
    const base = offset + this.prefixBytes.length;
    for (let slot = 0; slot < BODY_LENGTH; slot += 1) {
      const v = SLOT_VALUE[slot] ?? -1;
      const symbol = v < 0
        ? fillSymbol(h1, h2, h3, SLOT_FILL[slot] ?? 0)
        : v < 5 ? (position >>> (6 * v)) & 63 : (position >>> 30) | (check << 2);
      target[base + slot] = ALPHABET_BYTES[symbol] ?? 0;
    }
  }

  /**
   * Applies one follow and returns its event; `now` is the simulated Unix time in seconds. With `former`,
   * that former follower comes back; otherwise a former follower or a new user, as `choice` draws.
   */
  subscribe(rng: Rng, now: number, choice: SubscribeChoice, former?: number): ChurnEvent {
    let index: number;
    let resubscribe = false;
    if (former !== undefined) {
      const slot = this.former.subarray(0, this.formerLength).indexOf(former);
      if (slot < 0 || this.state[former] !== FORMER) throw new RangeError(`user ${former} is not a former follower`);
      index = this.takeFormer(slot);
      resubscribe = true;
    } else if (this.formerLength > 0 && rng.chance(choice.resubscribeRate)) {
      index = this.takeFormer(rng.below(this.formerLength));
      resubscribe = true;
    } else {
      index = this.users;
      if (index >= 0xffff_ffff) throw new RangeError('the account has run out of openids');
      this.ensureCapacity(index + 1);
      this.users += 1;
      this.addPosition(this.permute(index));
    }
    const named = choice.qrScene;
    const sceneIndex = choice.scene !== undefined ? SCENES.indexOf(choice.scene)
      : named !== undefined ? QR_SCENE
        // Drawn as before scenes could be named, so seeded runs repeat.
        : rng.chance(choice.qrRate) ? QR_SCENE : nonQrScene(rng.below(100 - (SCENE_WEIGHTS[QR_SCENE] ?? 0)));
    if (named !== undefined && sceneIndex !== QR_SCENE) throw new RangeError(`a QR scene needs ADD_SCENE_QR_CODE, not ${String(choice.scene)}`);
    const at = this.eventTime(index, now);
    this.state[index] = FOLLOWING;
    this.scene[index] = sceneIndex;
    this.subscribeTime[index] = at;
    this.setReturned(index, resubscribe);
    if (named === undefined) this.namedQr.delete(index);
    else this.namedQr.set(index, named);
    this.followers += 1;
    const qr = sceneIndex === QR_SCENE ? this.qrSourceOf(index, at) : undefined;
    const scene = SCENES[sceneIndex] ?? 'ADD_SCENE_OTHERS';
    return {
      type: 'subscribe',
      index,
      openid: this.openidOf(index),
      createTime: at,
      resubscribe,
      scene,
      eventKey: qr === undefined ? undefined : `qrscene_${qrKey(qr)}`,
      ticket: qr?.ticket,
      source: { scene, qrScene: qr === undefined ? undefined : qrKey(qr), returning: resubscribe },
    };
  }

  /** Applies one unfollow of `follower`, or of a random follower; undefined when nobody follows. */
  unsubscribe(rng: Rng, now: number, follower?: number): ChurnEvent | undefined {
    if (follower !== undefined && this.state[follower] !== FOLLOWING) throw new RangeError(`user ${follower} does not follow`);
    const index = follower ?? this.randomFollower(rng);
    if (index === undefined) return undefined;
    const source = this.followSource(index);
    const at = this.eventTime(index, now);
    this.state[index] = FORMER;
    this.followers -= 1;
    if (this.formerLength === this.former.length) {
      const grown = new Uint32Array(this.former.length * 2);
      grown.set(this.former);
      this.former = grown;
    }
    this.former[this.formerLength++] = index;
    return {
      type: 'unsubscribe', index, openid: this.openidOf(index), createTime: at, resubscribe: false,
      scene: undefined, eventKey: undefined, ticket: undefined, source,
    };
  }

  /**
   * The follows and unfollows before the run that made the initial population, derived from the same hashes
   * as its arrays (which churn overwrites): every initial user followed once, and the former followers left
   * again before 2024, all inside INITIAL_HISTORY.
   */
  forEachInitialChange(visit: (type: 'subscribe' | 'unsubscribe', at: number, scene: Scene) => void): void {
    for (let index = 0; index < this.initialUsers; index += 1) {
      const h = mix32(index ^ this.kAttr);
      const at = initialSubscribeTime(h);
      const scene = SCENES[weightedScene(h % 100)] ?? 'ADD_SCENE_OTHERS';
      visit('subscribe', at, scene);
      if (index >= this.initialFollowers) visit('unsubscribe', at + 1 + (mix32(h ^ 0xc2b2ae35) % (REFERENCE_EPOCH - at)), scene);
    }
  }

  /** Where the user's latest follow came from. */
  private followSource(index: number): FollowSource {
    const sceneIndex = this.scene[index] ?? 0;
    const qr = sceneIndex === QR_SCENE ? this.qrSourceOf(index, this.subscribeTime[index] ?? 0) : undefined;
    return {
      scene: SCENES[sceneIndex] ?? 'ADD_SCENE_OTHERS',
      qrScene: qr === undefined ? undefined : qrKey(qr),
      returning: ((this.returned[index >>> 3] ?? 0) & (1 << (index & 7))) !== 0,
    };
  }

  private setReturned(index: number, returned: boolean): void {
    const byte = this.returned[index >>> 3] ?? 0;
    this.returned[index >>> 3] = returned ? byte | (1 << (index & 7)) : byte & ~(1 << (index & 7));
  }

  /** Current followers in list order as newline-terminated ASCII, in chunks of up to `chunkLines` lines. */
  *exportChunks(chunkLines = PAGE_SIZE): Generator<Buffer> {
    const positions = new Uint32Array(chunkLines);
    let after = -1;
    for (;;) {
      const count = this.collect(after, positions);
      if (count === 0) return;
      const chunk = Buffer.allocUnsafe(count * (OPENID_LENGTH + 1));
      for (let k = 0; k < count; k += 1) {
        this.writeOpenid(positions[k] ?? 0, chunk, k * (OPENID_LENGTH + 1));
        chunk[k * (OPENID_LENGTH + 1) + OPENID_LENGTH] = 0x0a;
      }
      yield chunk;
      after = positions[count - 1] ?? 0;
    }
  }

  /**
   * The QR code a user followed through: the one a churn request named, or one derived from the follow itself;
   * either way push and user info agree.
   */
  private qrSourceOf(index: number, subscribeTime: number): QrSource {
    const named = this.namedQr.get(index);
    if (named !== undefined) {
      // One QR code per scene string, so every follow through it carries the same ticket, as on WeChat.
      let h = this.kAttr ^ 0x3c6ef372;
      for (let i = 0; i < named.length; i += 1) h = mix32(h ^ named.charCodeAt(i));
      return { qrScene: 0, qrSceneStr: named, ticket: this.ticket(h) };
    }
    const h = mix32(mix32(index ^ this.kAttr ^ 0x165667b1) ^ subscribeTime);
    const numeric = h % 10 < 7;
    const qrScene = numeric ? 1 + ((h >>> 4) % 100_000) : 0;
    const qrSceneStr = numeric ? '' : (SCENE_STRINGS[(h >>> 4) % SCENE_STRINGS.length] ?? 'card');
    return { qrScene, qrSceneStr, ticket: this.ticket(h) };
  }

  /** Tickets are base64 of a binary blob holding a weixin.qq.com/q/ URL; this keeps that look. */
  private ticket(h: number): string {
    const url = `http://weixin.qq.com/q/02${this.fillChars(h, 22)}`;
    const blob = Buffer.concat([Buffer.from([0x81, 0x07, 0x3a, 0x00]), Buffer.from(url, 'latin1'), Buffer.from(hexBytes(h))]);
    return blob.toString('base64');
  }

  private fillChars(seed: number, length: number): string {
    let out = '';
    let h = mix32(seed ^ this.kFill);
    for (let i = 0; i < length; i += 1) {
      if (i > 0 && i % 5 === 0) h = mix32(h ^ i);
      out += OPENID_ALPHABET[(h >>> (6 * (i % 5))) & 63] ?? '';
    }
    return out;
  }

  private decodePosition(openid: string): number | undefined {
    if (openid.length !== OPENID_LENGTH || !openid.startsWith(this.openidPrefix)) return undefined;
    const base = this.openidPrefix.length;
    const value: number[] = [];
    for (const slot of VALUE_SLOTS) {
      const symbol = symbolAt(openid, base + slot);
      if (symbol < 0) return undefined;
      value.push(symbol);
    }
    const [v0 = 0, v1 = 0, v2 = 0, v3 = 0, v4 = 0, v5 = 0] = value;
    const position = (v0 | (v1 << 6) | (v2 << 12) | (v3 << 18) | (v4 << 24) | ((v5 & 3) << 30)) >>> 0;
    if (v5 >>> 2 !== (mix32(position ^ this.kCheck) & 0xf)) return undefined;
    const expected = Buffer.allocUnsafe(OPENID_LENGTH);
    this.writeOpenid(position, expected, 0);
    return expected.toString('latin1') === openid ? position : undefined;
  }

  /** A 4-round Feistel network over 16-bit halves: a bijection of 32-bit values keyed per account. */
  private permute(index: number): number {
    let l = index >>> 16;
    let r = index & 0xffff;
    for (const key of this.keys) [l, r] = [r, l ^ (mix32(r ^ key) & 0xffff)];
    return ((l << 16) | r) >>> 0;
  }

  /** The rounds of `permute` run backwards. */
  private unpermute(position: number): number {
    let l = position >>> 16;
    let r = position & 0xffff;
    for (let round = this.keys.length - 1; round >= 0; round -= 1) [l, r] = [r ^ (mix32(l ^ (this.keys[round] ?? 0)) & 0xffff), l];
    return ((l << 16) | r) >>> 0;
  }

  private takeFormer(slot: number): number {
    const index = this.former[slot] ?? 0;
    this.formerLength -= 1;
    this.former[slot] = this.former[this.formerLength] ?? 0;
    return index;
  }

  private randomFollower(rng: Rng): number | undefined {
    if (this.followers === 0) return undefined;
    // Rejection sampling is uniform and fast while followers are a fair share of all users…
    for (let attempt = 0; attempt < 64; attempt += 1) {
      const index = rng.below(this.users);
      if (this.state[index] === FOLLOWING) return index;
    }
    // …and an account almost everyone left falls back to picking the k-th follower.
    let k = rng.below(this.followers);
    for (let index = 0; index < this.users; index += 1) {
      if (this.state[index] === FOLLOWING && k-- === 0) return index;
    }
    return undefined;
  }

  private addPosition(position: number): void {
    const pending = this.pending;
    const at = upperBoundArray(pending, position);
    pending.splice(at, 0, position);
    if (pending.length >= PENDING_MERGE_AT) this.mergePending();
  }

  private mergePending(): void {
    const pending = this.pending;
    const needed = this.sortedLength + pending.length;
    if (needed > this.sorted.length) {
      const grown = new Uint32Array(Math.max(needed, Math.ceil(this.sorted.length * 1.25) + PENDING_MERGE_AT));
      grown.set(this.sorted.subarray(0, this.sortedLength));
      this.sorted = grown;
    }
    // Merging from the back fills the free tail first, so no element is overwritten before it moves.
    const sorted = this.sorted;
    let i = this.sortedLength - 1;
    let j = pending.length - 1;
    for (let k = needed - 1; j >= 0; k -= 1) {
      const a = i >= 0 ? (sorted[i] as number) : -1;
      const b = pending[j] as number;
      if (a > b) {
        sorted[k] = a;
        i -= 1;
      } else {
        sorted[k] = b;
        j -= 1;
      }
    }
    this.sortedLength = needed;
    this.pending = [];
  }

  /**
   * A user's events are at least a second apart. WeChat's CreateTime has whole seconds and both WeChat's
   * guidance and wxsync's event ids treat (user, CreateTime, Event) as one event, so a simulator that let
   * a user leave and come back twice within one second would produce pushes no receiver can tell apart
   * from retries.
   */
  private eventTime(index: number, now: number): number {
    const at = Math.max(now, (this.lastEventTime[index] ?? 0) + 1);
    this.lastEventTime[index] = at;
    return at;
  }

  private ensureCapacity(users: number): void {
    if (users <= this.capacity) return;
    const capacity = Math.max(users, Math.ceil(this.capacity * 1.25) + 4096);
    const state = new Uint8Array(capacity);
    state.set(this.state);
    const scene = new Uint8Array(capacity);
    scene.set(this.scene);
    const subscribeTime = new Uint32Array(capacity);
    subscribeTime.set(this.subscribeTime);
    const lastEventTime = new Uint32Array(capacity);
    lastEventTime.set(this.lastEventTime);
    const returned = new Uint8Array(Math.ceil(capacity / 8));
    returned.set(this.returned);
    this.state = state;
    this.scene = scene;
    this.subscribeTime = subscribeTime;
    this.lastEventTime = lastEventTime;
    this.returned = returned;
    this.capacity = capacity;
  }
}

function initialSubscribeTime(h: number): number {
  return REFERENCE_EPOCH - 1 - (mix32(h ^ 0x5bd1e995) % HISTORY_SECONDS);
}

function weightedScene(percent: number): number {
  let acc = 0;
  for (let s = 0; s < SCENE_WEIGHTS.length; s += 1) {
    acc += SCENE_WEIGHTS[s] ?? 0;
    if (percent < acc) return s;
  }
  return SCENES.length - 1;
}

/** A scene other than the QR code, from a number below 100 minus the QR weight. */
function nonQrScene(value: number): number {
  let acc = 0;
  for (let s = 0; s < SCENE_WEIGHTS.length; s += 1) {
    if (s === QR_SCENE) continue;
    acc += SCENE_WEIGHTS[s] ?? 0;
    if (value < acc) return s;
  }
  return SCENES.length - 1;
}

function fillSymbol(h1: number, h2: number, h3: number, f: number): number {
  if (f < 5) return (h1 >>> (6 * f)) & 63;
  if (f < 10) return (h2 >>> (6 * (f - 5))) & 63;
  if (f < 15) return (h3 >>> (6 * (f - 10))) & 63;
  return (h1 >>> 30) | ((h2 >>> 30) << 2) | ((h3 >>> 30) << 4);
}

function symbolAt(text: string, at: number): number {
  const code = text.charCodeAt(at);
  return code < 128 ? (CHAR_VALUE[code] ?? -1) : -1;
}

function hexBytes(h: number): string {
  let out = '';
  for (let shift = 28; shift >= 0; shift -= 4) out += HEX[(h >>> shift) & 0xf] ?? '0';
  return out;
}

/** First index in sorted[0, length) whose value is greater than `value`. */
function upperBound(sorted: Uint32Array, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBoundArray(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
