import { MAX_EVENT_BYTES, APPID, OPENID, compact, readVersionedObject } from './fields.ts';

export const USER_PROFILE_VERSION = 1;

/** A record of wx.user.profiles: one batchget answer for one user, keyed `appid:openid`. */
export interface UserProfile {
  readonly v: typeof USER_PROFILE_VERSION;
  readonly appid: string;
  readonly openid: string;
  readonly subscribe: 0 | 1;
  /** WeChat's subscribe_time, in ms. */
  readonly subscribeTime?: number;
  readonly unionid?: string;
  readonly subscribeScene?: string;
  readonly qrScene?: number;
  readonly qrSceneStr?: string;
  readonly tagidList: readonly number[];
  readonly remark?: string;
  readonly fetchedAt: number;
}

export function decodeUserProfile(raw: Buffer | null): UserProfile {
  const reader = readVersionedObject(raw, 'user profile', USER_PROFILE_VERSION, MAX_EVENT_BYTES);
  const subscribe = reader.int('subscribe', 0, 1) as 0 | 1;
  const profile = compact<UserProfile>({
    v: USER_PROFILE_VERSION,
    appid: reader.text('appid', APPID),
    openid: reader.text('openid', OPENID),
    subscribe,
    subscribeTime: reader.optionalTimestampMs('subscribeTime'),
    unionid: reader.optionalText('unionid', /^[A-Za-z0-9_-]{1,64}$/),
    subscribeScene: reader.optionalText('subscribeScene', /^[A-Z_]{1,64}$/),
    qrScene: reader.optionalInt('qrScene', 0, 4_294_967_295),
    qrSceneStr: reader.optionalText('qrSceneStr', undefined, 64),
    tagidList: reader.intArray('tagidList', 0, 4_294_967_295, 100),
    remark: reader.optionalText('remark', undefined, 120),
    fetchedAt: reader.timestampMs('fetchedAt'),
  });
  reader.check('user profile');
  return profile;
}

export function encodeUserProfile(profile: UserProfile): Buffer {
  const bytes = Buffer.from(JSON.stringify(profile));
  decodeUserProfile(bytes);
  return bytes;
}
