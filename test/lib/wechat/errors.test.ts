import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, WxsyncError } from '../../../lib/errors.ts';
import { TOKEN_API, badAnswer, unreachable, wechatError, withDetails } from '../../../lib/wechat/errors.ts';

const API = '/cgi-bin/user/get';

describe('wechatError', () => {
  it('maps every errcode of wechat-protocol.md §7.1 to its code and retriability', () => {
    const table: [number, ErrorCode, boolean][] = [
      [-1, ErrorCode.WechatBusy, true],
      [45011, ErrorCode.WechatRateLimited, true],
      [45009, ErrorCode.WechatQuotaExhausted, false],
      [40001, ErrorCode.WechatTokenInvalid, false],
      [40014, ErrorCode.WechatTokenInvalid, false],
      [42001, ErrorCode.WechatTokenInvalid, false],
      [48001, ErrorCode.WechatForbidden, false],
      [40164, ErrorCode.WechatForbidden, false],
      [40243, ErrorCode.WechatForbidden, false],
      [50001, ErrorCode.WechatForbidden, false],
      [50002, ErrorCode.WechatForbidden, false],
      [89503, ErrorCode.WechatForbidden, false],
      [40013, ErrorCode.WechatRequestInvalid, false],
      [40003, ErrorCode.WechatRequestInvalid, false],
      [40125, ErrorCode.WechatRequestInvalid, false],
      [40002, ErrorCode.WechatRequestInvalid, false],
      [41001, ErrorCode.WechatRequestInvalid, false],
      [76021, ErrorCode.WechatRequestInvalid, false],
      [12345, ErrorCode.WechatApiError, false],
    ];
    for (const [errcode, code, retriable] of table) {
      const error = wechatError(API, errcode, 'some text rid: 1-2-3');
      assert.equal(error.code, code, String(errcode));
      assert.equal(error.retriable, retriable, String(errcode));
      assert.deepEqual(error.details, { api: API, errcode, errmsg: 'some text rid: 1-2-3' });
    }
  });

  it('classifies by errcode, never by errmsg', () => {
    assert.equal(wechatError(API, 12345, 'api freq out of limit').code, ErrorCode.WechatApiError);
    assert.equal(wechatError(API, 45009, '').code, ErrorCode.WechatQuotaExhausted);
  });

  it('takes 40001 from the token endpoints as a wrong AppSecret, not a stale token', () => {
    assert.equal(wechatError(TOKEN_API, 40001, 'invalid credential').code, ErrorCode.WechatRequestInvalid);
    assert.equal(wechatError('/cgi-bin/token', 40001, 'invalid credential').code, ErrorCode.WechatRequestInvalid);
  });

  it('cuts an overlong errmsg', () => {
    const error = wechatError(API, -1, 'x'.repeat(10_000));
    assert.ok((error.details['errmsg'] as string).length < 400);
    assert.ok(error.message.length < 500);
  });
});

describe('error helpers', () => {
  it('make BAD_ANSWER final and UNREACHABLE retriable', () => {
    assert.equal(badAnswer(API, 'not JSON').retriable, false);
    assert.equal(badAnswer(API, 'not JSON').code, ErrorCode.WechatBadAnswer);
    assert.equal(unreachable(API, 'ECONNRESET').retriable, true);
    assert.equal(unreachable(API, 'ECONNRESET').code, ErrorCode.WechatUnreachable);
  });

  it('withDetails keeps code, message and retriability', () => {
    const original = new WxsyncError(ErrorCode.WechatBusy, 'busy', { retriable: true, details: { errcode: -1 } });
    const extended = withDetails(original, { cursor: 'oB', page: 3 });
    assert.equal(extended.code, ErrorCode.WechatBusy);
    assert.equal(extended.message, 'busy');
    assert.equal(extended.retriable, true);
    assert.deepEqual(extended.details, { errcode: -1, cursor: 'oB', page: 3 });
  });
});
