import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ALERT_KINDS } from '../../alerts/kinds.ts';
import { selectRoles } from '../../cli/run.ts';
import { loadConfig, packageRoot } from '../../lib/config.ts';
import { freePorts } from '../../lib/ports.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, type TestEnv } from '../support/env.ts';
import { adminFetch, startRun } from '../support/wxsync.ts';

// docs/prometheus/wxsync-alerts.yml is for users with Prometheus and Alertmanager. Debian's `prometheus` package
// gives promtool (.ci/run installs it), which checks the rules and runs their unit tests (wxsync-alerts.test.yml);
// this file also checks that the rules name only metrics a real `wxsync run` exposes, so a renamed metric cannot
// leave a rule that silently never fires.

const DIR = path.join(packageRoot, 'docs', 'prometheus');
const RULES = 'wxsync-alerts.yml';
const UNIT_TESTS = 'wxsync-alerts.test.yml';
const ANNOTATIONS = ['summary', 'summary_zh', 'description', 'description_zh'];

async function promtool(args: readonly string[]): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)('promtool', args, { cwd: DIR });
    return stdout + stderr;
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failed.code === 'ENOENT') throw new Error('promtool is not installed: `apt-get install prometheus` (Debian\'s package provides it; .ci/run installs it when missing)', { cause: error });
    throw new Error(`promtool ${args.join(' ')} failed:\n${failed.stdout ?? ''}${failed.stderr ?? ''}`, { cause: error });
  }
}

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string | undefined;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

/**
 * The rules of the file as written: no YAML parser is a dependency of the project, and the file keeps one shape
 * (a one-line `expr:` or a `|` block, `for:`, flat `labels:` and `annotations:` maps). promtool's own count of the rules
 * is checked against this reading, so a rule this reading missed fails the test.
 */
function readRules(text: string): Rule[] {
  return text.split(/^ {6}- alert: /m).slice(1).map((block) => {
    const alert = block.slice(0, block.indexOf('\n'));
    const multiline = /^ {8}expr: \|\n((?: {10}.*\n)+)/m.exec(block);
    const expr = multiline?.[1] ?? /^ {8}expr: (.+)$/m.exec(block)?.[1] ?? '';
    const map = (key: string): Record<string, string> => {
      const body = new RegExp(`^ {8}${key}:\\n((?: {10}.*\\n?)+)`, 'm').exec(block)?.[1] ?? '';
      return Object.fromEntries([...body.matchAll(/^ {10}(\w+): "?(.*?)"?$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
    };
    return { alert, expr: expr.trim(), for: /^ {8}for: (\S+)$/m.exec(block)?.[1], labels: map('labels'), annotations: map('annotations') };
  });
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers, ranges and
 * grouping label lists are removed, other than keywords and function or aggregation names (followed by `(`).
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = [...bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?/g)]
    .filter((m) => m[2] === undefined && !KEYWORDS.has((m[1] ?? '').toLowerCase()))
    .map((m) => m[1] ?? '');
  return [...new Set(names)];
}

const rules = readRules(readFileSync(path.join(DIR, RULES), 'utf8'));

describe('docs/prometheus/wxsync-alerts.yml', () => {
  it('passes promtool check rules, lint included, with every rule read here', async () => {
    const out = await promtool(['check', 'rules', '--lint=all', '--lint-fatal', RULES]);
    assert.match(out, new RegExp(`SUCCESS: ${rules.length} rules found`), out);
  });

  it('has one rule per alert kind, each with a severity and its texts in English and Chinese naming the account or instance and the figure', () => {
    assert.deepEqual(rules.map((r) => r.labels['kind']).sort(), [...ALERT_KINDS].sort());
    for (const rule of rules) {
      assert.match(rule.labels['severity'] ?? '', /^(critical|warning)$/, rule.alert);
      assert.deepEqual(Object.keys(rule.annotations).sort(), [...ANNOTATIONS].sort(), rule.alert);
      for (const text of [rule.annotations['description'], rule.annotations['description_zh']]) {
        assert.match(text ?? '', /\{\{ \$labels\.(appid|instance) \}\}/, rule.alert);
        assert.match(text ?? '', /\{\{ \$value( \| humanize\w*)? \}\}/, rule.alert);
      }
    }
  });

  it('uses the thresholds and durations of wxsync\'s own alerts by default (WXSYNC_ALERT_*)', () => {
    const { alerts } = loadConfig({});
    const rule = (kind: string): Rule => {
      const found = rules.find((r) => r.labels['kind'] === kind);
      assert.ok(found, kind);
      return found;
    };
    assert.match(rule('pushes_lost').expr, new RegExp(`> ${alerts.lostCount}\\n[^]*> ${alerts.lostShare} \\* `));
    assert.match(rule('quota_low').expr, new RegExp(`< ${alerts.quotaShare} \\* `));
    assert.match(rule('pushes_refused_spike').expr, new RegExp(`\\* 60 > ${alerts.refusedPerMinute}$`));
    assert.equal(rule('spool_not_draining').for, `${alerts.spoolMs / 60_000}m`);
    assert.equal(rule('consumer_stuck').for, `${alerts.stuckMs / 60_000}m`);
    for (const r of rules.filter((r) => !['spool_not_draining', 'consumer_stuck'].includes(r.labels['kind'] ?? ''))) assert.equal(r.for, undefined, r.alert);
  });

  it('passes its promtool unit tests, which make every rule fire', async () => {
    const tests = readFileSync(path.join(DIR, UNIT_TESTS), 'utf8');
    for (const { alert } of rules) {
      assert.match(tests, new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${UNIT_TESTS} expects ${alert} to fire`);
    }
    assert.match(await promtool(['test', 'rules', UNIT_TESTS]), /SUCCESS/);
  });

  it('reads metric names out of PromQL', () => {
    assert.deepEqual(metricNames('sum without (reason) (rate(a_total{reason=~"x|y"}[2m])) * 60 > 1e3 and on (i) b offset 5m unless deriv(c:d[5m]) >= 0.5'), ['a_total', 'b', 'c:d']);
  });

  describe('names only metrics that /metrics of wxsync run with every role exposes', { timeout: 240_000 }, () => {
    let t: TestEnv;
    let sim: SimHarness;
    let port: number;

    before(async () => {
      [port = 0] = await freePorts(1);
      sim = await SimHarness.start({ followers: [50], callbackUrl: `http://127.0.0.1:${port}/wechat` });
      t = testEnv({ PORT: String(port) });
      sim.configure(t);
    });
    after(async () => {
      await sim.close();
      t.cleanup();
    });

    it('exposes every metric the rules select', async () => {
      const named = [...new Set(rules.flatMap((r) => metricNames(r.expr)))].sort();
      assert.ok(named.length >= ALERT_KINDS.length, `metrics read from the rules: ${named.join(', ')}`);
      for (const name of named) assert.match(name, /^wxsync_/, 'the rules read wxsync\'s metrics only');

      const running = await startRun(t.env, port, selectRoles(undefined).join(','));
      let exposition;
      try {
        const res = await adminFetch(t.env, '/metrics');
        assert.equal(res.status, 200);
        exposition = await res.text();
      } finally {
        assert.equal(await running.stop(), 0, `wxsync run stopped cleanly\n${running.stderr()}`);
      }
      // A labelled metric has no sample until it is first set, but prom-client lists it from its registration.
      const exposed = new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
      const missing = named.filter((name) => !exposed.has(name));
      assert.deepEqual(missing, [], `metrics the rules name that /metrics does not expose: ${missing.join(', ')}`);
    });
  });
});
