/** npm run bench: every benchmark in turn, each in its own process so peak-RSS figures stay its own. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../lib/config.ts';

const benches = ['consumer.ts', 'sim.ts', 'snapshot.ts', 'callback.ts', 'reconcile.ts', 'report.ts'];
let failed = 0;
for (const file of benches) {
  process.stdout.write(`\n== bench/${file}\n`);
  const result = spawnSync(process.execPath, ['--max-old-space-size=8192', '--import', 'tsx', path.join(packageRoot, 'bench', file)], { stdio: 'inherit' });
  if (result.status !== 0) failed += 1;
}
process.exitCode = failed === 0 ? 0 : 1;
