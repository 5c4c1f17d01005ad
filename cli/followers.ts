import { once } from 'node:events';
import { followerLines } from '../api/followers.ts';
import { answerError, requestRunning } from '../lib/api-client.ts';
import { createClickHouse } from '../lib/clickhouse.ts';
import { accountInvocation } from './command.ts';

export const summary = 'the current followers in the store, one openid per line';

const USAGE = 'usage: wxsync followers <appid>';

async function write(chunk: string): Promise<void> {
  if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

export async function main(argv: readonly string[]): Promise<number> {
  const { appid, config } = accountInvocation(argv, USAGE, {});

  // ⚑ While `wxsync run` holds the embedded store, only it may open it: ask it.
  const answer = await requestRunning(config, 'GET', `/api/followers/${appid}`);
  if (answer !== undefined) {
    if (answer.status !== 200) throw await answerError(answer, 'api');
    answer.body.setEncoding('utf8');
    for await (const chunk of answer.body) await write(chunk as string);
    return 0;
  }
  const clickhouse = createClickHouse(config.clickhouse);
  try {
    for await (const chunk of followerLines(clickhouse, config.clickhouse.database, appid)) await write(chunk);
  } finally {
    await clickhouse.close();
  }
  return 0;
}
