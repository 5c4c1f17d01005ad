#!/usr/bin/env node
// The npm registry these machines reach serves chDB's engine only for linux-x64, so `npm install`
// leaves chdb's other platform packages out of package-lock.json, and `npm ci` then refuses the lock.
// This adds them back as platform-gated optional entries, which npm skips (never fetches) elsewhere.
// Run it after any `npm install` that rewrites the lock.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const file = path.join(root, 'package-lock.json');
const lock = JSON.parse(readFileSync(file, 'utf8'));
const chdb = lock.packages['node_modules/chdb'];
const platforms = { 'darwin-arm64': ['darwin', 'arm64'], 'darwin-x64': ['darwin', 'x64'], 'linux-arm64-gnu': ['linux', 'arm64'], 'linux-x64-gnu': ['linux', 'x64'] };
let added = 0;
for (const [name, version] of Object.entries(chdb.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  const platform = platforms[name.replace('@chdb/lib-', '')];
  if (lock.packages[key] !== undefined || platform === undefined) continue;
  lock.packages[key] = { version, cpu: [platform[1]], license: 'Apache-2.0', optional: true, os: [platform[0]] };
  added += 1;
}
const [rootEntry, ...rest] = Object.entries(lock.packages);
lock.packages = Object.fromEntries([rootEntry, ...rest.sort(([a], [b]) => a.localeCompare(b))]);
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform entr${added === 1 ? 'y' : 'ies'} added`);
