import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, packageRoot } from '../lib/config.ts';

// No Docker engine runs on the CI machines, so this is what keeps docker-compose.yml honest: every
// variable it gives wxsync is one the code reads, with a value the code accepts.
describe('docker-compose.yml', () => {
  const text = readFileSync(path.join(packageRoot, 'docker-compose.yml'), 'utf8');
  const service = text.slice(text.indexOf('\n  wxsync:'), text.indexOf('\nvolumes:'));
  const block = service.slice(service.indexOf('environment:'), service.indexOf('    ports:'));
  const env = Object.fromEntries([...block.matchAll(/^ {6}([A-Z0-9_]+): "?([^"\n]*)"?$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));

  it('gives wxsync only variables that lib/config.ts reads', () => {
    const source = readFileSync(path.join(packageRoot, 'lib', 'config.ts'), 'utf8');
    assert.ok(Object.keys(env).length >= 5);
    for (const name of Object.keys(env)) assert.ok(source.includes(`'${name}'`), `${name} is read by loadConfig`);
  });

  it('gives values loadConfig accepts, pointing at the compose services', () => {
    const config = loadConfig(env, '/');
    assert.deepEqual(config.kafka.brokers, ['kafka:9092']);
    assert.equal(config.clickhouse.target.kind, 'server');
    assert.equal(config.http.port, 8080);
  });

  it('builds an image that contains every source folder the CLI imports', () => {
    const dockerfile = readFileSync(path.join(packageRoot, 'Dockerfile'), 'utf8');
    for (const folder of ['bin', 'cli', 'lib', 'consumers', 'producers', 'sim', 'sql']) assert.match(dockerfile, new RegExp(`COPY ${folder} `));
  });
});
