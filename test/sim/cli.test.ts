import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import axios from 'axios';
import { packageRoot } from '../../lib/config.ts';

const bin = path.join(packageRoot, 'bin', 'wxsync.js');

function run(args: readonly string[]): { child: ChildProcessByStdio<null, Readable, Readable>; stderr: () => string } {
  const child = spawn(process.execPath, [bin, 'sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return { child, stderr: () => stderr };
}

describe('wxsync sim', () => {
  it('prints one ready line, serves, and stops cleanly on SIGTERM', async () => {
    const { child } = run(['--port', '0', '--accounts', '2', '--followers', '3,4', '--log-level', 'silent']);
    const lines = createInterface({ input: child.stdout });
    const [first] = (await once(lines, 'line')) as [string];
    const ready = JSON.parse(first) as { ready: boolean; apiBase: string; accounts: { appid: string; followers: number }[] };
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.accounts.map((account) => account.followers), [3, 4]);
    const res = await axios.get<string>(`${ready.apiBase}/__sim/accounts/${ready.accounts[1]?.appid ?? ''}/followers`, { responseType: 'text' });
    assert.equal(res.data.trimEnd().split('\n').length, 4);
    const more: string[] = [];
    lines.on('line', (line) => more.push(line));
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.deepEqual(more, [], 'stdout holds nothing but the ready line');
  });

  it('exits 2 with every problem on bad flags', async () => {
    const { child, stderr } = run(['--port', 'x', '--mode', 'nope']);
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 2);
    assert.match(stderr(), /--port must be an integer.*--mode must be one of plain, compat, safe/);
  });

  it('prints usage for --help', async () => {
    const { child } = run(['--help']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.match(stdout, /usage: wxsync sim/);
    assert.match(stdout, /--callback-url BASE/);
  });
});
