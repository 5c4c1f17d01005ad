import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../lib/config.ts';

describe('package-lock.json', () => {
  it('lists every optional platform package of chdb, or `npm ci` refuses it on a clean clone', () => {
    const lock = JSON.parse(readFileSync(path.join(packageRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> } | undefined>;
    };
    const wanted = Object.keys(lock.packages['node_modules/chdb']?.optionalDependencies ?? {});
    assert.ok(wanted.length > 0);
    const missing = wanted.filter((name) => lock.packages[`node_modules/${name}`] === undefined);
    assert.deepEqual(missing, [], 'run `node scripts/complete-lock.js` after `npm install`');
  });
});
