/**
 * Why a push was refused. `reason` is the metric label; `detail` is the one-line body the sender sees,
 * fixed per reason: it never carries key material, parser internals, an internal error or text taken from
 * the request, so an answer tells a prober nothing a reason's name does not.
 * A class, so results are told apart with instanceof rather than by probing fields a hostile XML body
 * could also carry.
 */
export class Rejection {
  readonly status: RefusalStatus;
  readonly detail: string;

  constructor(readonly reason: RejectReason) {
    [this.status, this.detail] = REFUSALS[reason];
  }
}

type RefusalStatus = 400 | 403 | 404 | 405 | 413;

const REFUSALS = {
  bad_path: [400, 'the path is not /wechat/<appid>'],
  unknown_appid: [404, 'no account with this appid is configured'],
  method: [405, 'only GET and POST are served here'],
  missing_query: [400, 'the query lacks signature, timestamp, nonce or echostr, or holds a malformed one'],
  unencrypted_push: [403, 'this account takes encrypted pushes only (encrypt_type=aes with msg_signature)'],
  stale_timestamp: [403, 'timestamp is outside the accepted window'],
  stale_create_time: [403, 'CreateTime is outside the accepted window'],
  bad_signature: [403, 'signature does not match'],
  bad_msg_signature: [403, 'msg_signature does not match'],
  bad_envelope: [400, 'the body is not a WeChat Encrypt envelope'],
  plaintext_in_safe_mode: [400, 'this account is in safe mode: the body may hold only ToUserName and Encrypt'],
  no_key: [400, 'encrypted push, but no EncodingAESKey is configured for this account'],
  decrypt_failed: [400, 'the Encrypt value cannot be decrypted'],
  appid_mismatch: [403, 'the message was encrypted for another appid'],
  body_too_large: [413, 'the body is too large'],
  not_xml: [400, 'the body is not a WeChat <xml> document'],
  dtd_refused: [400, 'XML with a DTD or entity declarations is refused'],
  missing_field: [400, 'a required element is missing'],
  invalid_field: [400, 'an element holds a value outside its format'],
} as const satisfies Record<string, readonly [RefusalStatus, string]>;

export type RejectReason = keyof typeof REFUSALS;

export const REJECT_REASONS = Object.keys(REFUSALS) as readonly RejectReason[];

export function reject(reason: RejectReason): Rejection {
  return new Rejection(reason);
}
