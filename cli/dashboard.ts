import path from 'node:path';
import { adminToken, readAdminEndpoint } from '../lib/admin.ts';
import { answerError, readText, requestRunning } from '../lib/api-client.ts';
import { loadConfig } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { dashboardUrl } from '../dashboard/url.ts';

export const summary = 'the address that opens the dashboard of the wxsync run on this machine (with its credential)';

const USAGE = 'usage: wxsync dashboard';

/**
 * Prints the dashboard's address on stdout, never in a log: it carries the admin token (in the fragment). Asks the
 * running process first, so an address is printed only when a page would answer it. Exit codes: 0 printed, 1 no
 * `wxsync run` with the api role listens, 2 a bad invocation.
 */
export async function main(argv: readonly string[]): Promise<number> {
  // Nothing to parse: any argument is a mistake, named by its place rather than echoed (it may be huge).
  if (argv.length > 0) throw new WxsyncError(ErrorCode.UsageInvalid, `wxsync dashboard takes no arguments (${argv.length} given)\n${USAGE}`);
  const config = loadConfig();
  const answer = await requestRunning(config, 'GET', '/api/status');
  const endpoint = readAdminEndpoint(config.http.admin);
  const token = adminToken(config.http.admin, false);
  if (answer === undefined || endpoint === undefined || token === undefined) {
    throw new WxsyncError(ErrorCode.ApiRequestFailed, `no wxsync run is listening for this data directory (${path.dirname(config.http.admin.endpointFile)}): start \`wxsync run\`, or try \`wxsync demo\`, which prints its own address`);
  }
  if (answer.status !== 200) throw await answerError(answer, 'api');
  await readText(answer.body);
  process.stdout.write(`${dashboardUrl(endpoint, token)}\n`);
  return 0;
}
