/**
 * Why a push was refused. `reason` is the metric label; `detail` is the one-line body the sender sees.
 * Neither carries key material, parser internals or text taken from the request.
 * A class, so results are told apart with instanceof rather than by probing fields a hostile XML body
 * could also carry.
 */
export class Rejection {
  constructor(
    readonly status: 400 | 403 | 404 | 405 | 413 | 415,
    readonly reason: RejectReason,
    readonly detail: string,
  ) {}
}

export type RejectReason =
  | 'unknown_appid'
  | 'method'
  | 'missing_query'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'bad_msg_signature'
  | 'no_key'
  | 'decrypt_failed'
  | 'appid_mismatch'
  | 'body_too_large'
  | 'not_xml'
  | 'dtd_refused'
  | 'missing_field'
  | 'invalid_field';

export function reject(status: Rejection['status'], reason: RejectReason, detail: string): Rejection {
  return new Rejection(status, reason, detail);
}
