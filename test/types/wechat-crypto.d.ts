/** node-webot's WeChat message crypto (npm wechat-crypto), which ships no types: the part the tests use. */
declare module 'wechat-crypto' {
  class WXBizMsgCrypt {
    /** `id` is the AppID (Official Accounts) or CorpID (WeCom); the EncodingAESKey is the 43-character form. */
    constructor(token: string, encodingAESKey: string, id: string);
    /** msg_signature: sha1 hex of the sorted token, timestamp, nonce and Encrypt value. */
    getSignature(timestamp: string, nonce: string, encrypt: string): string;
    /** The XML message and the AppID found after it; the caller checks the AppID. */
    decrypt(encrypt: string): { message: string; id: string };
    encrypt(text: string): string;
  }
  export = WXBizMsgCrypt;
}
