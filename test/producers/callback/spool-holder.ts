// Holds a spool open in a child process for the lock tests of spool.test.ts: prints `locked` once it holds
// the directory's lock, then waits to be killed (a SIGKILL leaves the lock behind, as a crash would).
import { silentLogger } from '../../../lib/logger.ts';
import { Spool } from '../../../producers/callback/spool.ts';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: spool-holder.ts <dir>');
await Spool.open(dir, silentLogger());
process.stdout.write('locked\n');
setInterval(() => undefined, 60_000);
