import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acceptsConnections } from '../../lib/kafka-local.ts';
import { WXSYNC_BIN } from '../../lib/local-stack.ts';
import { freePorts } from '../../lib/ports.ts';
import { TEST_BROKERS } from '../support/env.ts';
import { wxsync } from '../support/wxsync.ts';

interface DemoRun { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** `wxsync demo …` to its end; `onOutput` sees stdout as it grows and may signal the demo. */
async function demo(env: Record<string, string>, args: readonly string[], onOutput: (stdout: string, signal: (s: NodeJS.Signals) => void) => void = () => undefined): Promise<DemoRun> {
  const child = spawn(process.execPath, [WXSYNC_BIN, 'demo', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onOutput(stdout, (s) => child.kill(s));
  });
  child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-8000); });
  const [code] = await once(child, 'exit') as [number | null];
  return { code, stdout, stderr };
}

/** Whether `pid` runs: a zombie (exited, not yet reaped by whoever inherited it) does not. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Live processes whose command line names `dir`: a broker started from it names its server.properties there. */
function processesUsing(dir: string): string[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).flatMap((pid) => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      return cmdline.includes(dir) && alive(Number(pid)) ? [`${pid}: ${cmdline}`] : [];
    } catch {
      return [];
    }
  });
}

function match(text: string, pattern: RegExp): RegExpExecArray {
  const found = pattern.exec(text);
  assert.ok(found !== null, `no ${String(pattern)} in:\n${text}`);
  return found;
}

describe('wxsync demo', () => {
  let dir = '';
  before(() => { dir = mkdtempSync(path.join(tmpdir(), 'wxsync-demo-')); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('--duration 60 from a clean data directory, no broker answering: exits 0, prints the report, the store equals the truth, nothing is left running', { timeout: 900_000 }, async () => {
    const dataDir = path.join(dir, 'fresh');
    const [silent] = await freePorts(1) as [number];
    const started = Date.now();
    const ran = await demo({ WXSYNC_DATA_DIR: dataDir, KAFKA_BROKERS: `127.0.0.1:${silent}` }, ['--duration', '60', '--followers', '20000,5000,2000']);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    const { stdout } = ran;

    const [, brokerPort, brokerPid] = match(stdout, /^Kafka: started a broker of the demo's own on 127\.0\.0\.1:(\d+) \(pid (\d+)\), stopped at the end$/m);
    const [, runPid, publicPort] = match(stdout, /^wxsync run: pid (\d+), callbacks on 127\.0\.0\.1:(\d+), logs in \S+run\.log$/m);
    const [, adminPort] = match(stdout, /^dashboard: http:\/\/127\.0\.0\.1:(\d+)\/dashboard#token=\S{32,}$/m);
    match(stdout, /^\d\d:\d\d:\d\d demo \d+s: WeChat pushes \d+\/s/m);
    const equal = [...stdout.matchAll(/^(wx[0-9a-f]{16}): store = truth \(([\d,]+) followers\)$/gm)].map((m) => ({ appid: m[1] ?? '', followers: Number((m[2] ?? '').replaceAll(',', '')) }));
    assert.equal(equal.length, 3, stdout);
    // The report: the history by year, then the demo's day, every account in it.
    match(stdout, /^year +follows +unfollows +followers at its end\n-+/m);
    match(stdout, /^churn of 3 accounts, \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d \(Asia\/Shanghai\), by day$/m);
    for (const { appid } of equal) match(stdout, new RegExp(`^${appid} +\\d+ +\\d+ +\\d+ +\\d+ +-?\\d+ +\\d+ +[\\d.]+% +`, 'm'));
    match(stdout, /^recovered = found by a snapshot or a live check because WeChat's push was lost \(\d+ follows, \d+ unfollows\)\.$/m);
    match(stdout, new RegExp(`^stopped wxsync run \\(pid ${runPid ?? ''}\\), the simulator, Kafka \\(pid ${brokerPid ?? ''}\\)$`, 'm'));

    // Nothing it started is left: not the broker, not wxsync run, no process of its directory, no listener.
    assert.ok(!alive(Number(runPid)), `wxsync run (pid ${runPid ?? ''}) is still running`);
    assert.ok(!alive(Number(brokerPid)), `the broker (pid ${brokerPid ?? ''}) is still running`);
    assert.deepEqual(processesUsing(dataDir), []);
    for (const port of [brokerPort, publicPort, adminPort]) assert.equal(await acceptsConnections(Number(port), 500), false, `something still listens on ${port ?? ''}`);

    // Independently of what the demo said: the store it left, opened afresh, holds exactly WeChat's followers at the end.
    const env = { WXSYNC_DATA_DIR: path.join(dataDir, 'demo'), WXSYNC_ACCOUNTS: path.join(dataDir, 'demo', 'accounts.json'), KAFKA_BROKERS: `127.0.0.1:${silent}` };
    for (const { appid, followers } of equal) {
      const truth = readFileSync(path.join(dataDir, 'demo', 'truth', `${appid}.txt`), 'utf8');
      assert.equal(truth.split('\n').length - 1, followers);
      const listed = await wxsync(env, ['followers', appid]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok(listed.stdout === truth, `the store's followers of ${appid} differ from the truth`);
    }
    process.stdout.write(`# the demo ran ${seconds.toFixed(0)} s\n`);
  });

  it('Ctrl-C on a running broker: the churn stops, the report is printed, wxsync run is stopped and the broker left running', { timeout: 600_000 }, async () => {
    const dataDir = path.join(dir, 'interrupted');
    let interrupted = false;
    const ran = await demo({ WXSYNC_DATA_DIR: dataDir, KAFKA_BROKERS: TEST_BROKERS }, ['--followers', '3000,1000'], (stdout, signal) => {
      // Once both accounts are imported and churning: a second plain line that shows pushes.
      if (!interrupted && [...stdout.matchAll(/^\d\d:\d\d:\d\d demo \d+s: WeChat pushes [1-9]/gm)].length >= 2) {
        interrupted = true;
        signal('SIGINT');
      }
    });
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    const { stdout } = ran;
    match(stdout, new RegExp(`^Kafka: the broker at ${TEST_BROKERS.replaceAll('.', '\\.')}, left running at the end$`, 'm'));
    const [, runPid] = match(stdout, /^wxsync run: pid (\d+), /m);
    match(stdout, /^stopped by Ctrl-C: no last snapshot and reconcile/m);
    match(stdout, /^churn of 2 accounts, /m);
    match(stdout, new RegExp(`^stopped wxsync run \\(pid ${runPid ?? ''}\\), the simulator$`, 'm'));
    assert.ok(!alive(Number(runPid)));
    assert.deepEqual(processesUsing(dataDir), []);
    assert.ok(await acceptsConnections(Number(TEST_BROKERS.split(':')[1]), 2000), 'the broker the demo found was stopped');
  });

  it('refuses a bad invocation, and a data directory holding files no demo made, with one line and exit 2', async () => {
    const bad = await wxsync({ WXSYNC_DATA_DIR: path.join(dir, 'bad') }, ['demo', '--accounts', '0', '--drop-rate', '2']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^wxsync: USAGE_INVALID: demo: --accounts must be an integer from 1 to 10, got "0"; --drop-rate must be a number from 0 to 1, got "2" \(see wxsync demo --help\)\n$/);
    const foreign = path.join(dir, 'foreign');
    mkdirSync(path.join(foreign, 'demo'), { recursive: true });
    writeFileSync(path.join(foreign, 'demo', 'notes.txt'), 'mine\n');
    const refused = await wxsync({ WXSYNC_DATA_DIR: foreign }, ['demo', '--duration', '1']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /holds files no demo made/);
    assert.equal(readFileSync(path.join(foreign, 'demo', 'notes.txt'), 'utf8'), 'mine\n');
    const help = await wxsync({}, ['demo', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: wxsync demo \[--accounts N\] \[--followers N\[,N\.\.\.\]\] \[--drop-rate R\] \[--duration S\]\n/);
  });
});
