import { ALNUM, HEX, deriveChars } from './random.ts';

/** What an operator copies from the MP console for one account, derived from --seed and the account number. */
export interface SimCredentials {
  /** `wx` + 16 hex digits, like a real AppID. */
  readonly appid: string;
  readonly secret: string;
  /** The callback Token (the console allows 3–32 letters and digits). */
  readonly token: string;
  /** 43 letters and digits; about 3 in 4 such keys are non-canonical base64, as real ones are. */
  readonly encodingAESKey: string;
  /** The account's original id `gh_…`, the ToUserName of every push. */
  readonly originalId: string;
}

export function deriveCredentials(seed: number, account: number): SimCredentials {
  return {
    appid: `wx${deriveChars(HEX, 16, 'appid', seed, account)}`,
    secret: deriveChars(HEX, 32, 'secret', seed, account),
    token: deriveChars(ALNUM, 32, 'token', seed, account),
    encodingAESKey: deriveChars(ALNUM, 43, 'aes-key', seed, account),
    originalId: `gh_${deriveChars(HEX, 12, 'original-id', seed, account)}`,
  };
}
