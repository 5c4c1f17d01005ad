import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accountRoutes, accountsAnswer } from '../../api/accounts.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { adminServer, type AdminServer } from '../dashboard/admin-server.ts';

describe('GET /api/accounts', () => {
  let config: Config;
  let server: AdminServer;
  before(async () => {
    config = {
      ...loadConfig({ WXSYNC_REPORT_TZ: 'Asia/Shanghai' }),
      accounts: [
        { appid: 'wx1', secret: 'secret-1', token: 'token-1', encodingAESKey: 'k'.repeat(43), snapshotCron: '0 2 * * *' },
        { appid: 'wx2', secret: 'secret-2', token: 'token-2', mode: 'plain', reconcileCron: '0 3 * * *' },
      ],
    };
    server = await adminServer(accountRoutes(config));
  });
  after(async () => { await server.close(); });

  it('lists the accounts with their mode and schedules, never a credential', async () => {
    const expected = {
      accounts: [
        { appid: 'wx1', mode: 'safe', snapshotCron: '0 2 * * *', reconcileCron: null },
        { appid: 'wx2', mode: 'plain', snapshotCron: null, reconcileCron: '0 3 * * *' },
      ],
      tz: 'Asia/Shanghai',
    };
    assert.deepEqual(accountsAnswer(config), expected);
    const res = await server.get('/api/accounts');
    const text = await res.text();
    assert.deepEqual([res.status, JSON.parse(text)], [200, expected]);
    assert.ok(!/secret-|token-|kkkk/.test(text));
  });

  it('answers its path alone, and GET alone', async () => {
    assert.equal((await server.get('/api/accounts?x=1')).status, 200);
    assert.equal((await server.get('/api/accountsx')).status, 404);
    assert.equal((await server.get('/api/accounts/wx1')).status, 404);
    assert.equal((await server.get('/api/accounts', { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${server.base}/api/accounts`)).status, 401);
  });
});
