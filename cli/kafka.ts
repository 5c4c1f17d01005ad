import { loadConfig } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { kafkaPaths, kafkaStatus, startKafka, stopKafka } from '../lib/kafka-local.ts';
import { createLogger } from '../lib/logger.ts';

export const summary = 'start [--fresh] | stop | status of the local single-node Kafka broker';

const USAGE = [
  'usage: wxsync kafka start [--fresh] | stop | status',
  '',
  '  start    start the local broker (idempotent); fetches the Kafka jars with Maven on first use',
  '  --fresh  stop it if running and delete all topics and offsets first',
  '  stop     stop it (SIGTERM, SIGKILL after 20 s); topics are kept',
  '  status   exit 0 when running and accepting connections, 1 when running but not accepting, 3 when stopped',
  '',
  'Settings: WXSYNC_KAFKA_PORT, WXSYNC_KAFKA_CONTROLLER_PORT, WXSYNC_KAFKA_DIR, WXSYNC_KAFKA_HEAP,',
  'WXSYNC_KAFKA_START_TIMEOUT_S.',
].join('\n');

/** LSB init-script convention, which service managers and shell scripts already understand. */
const EXIT_NOT_RUNNING = 3;

function usageError(message: string): WxsyncError {
  return new WxsyncError(ErrorCode.UsageInvalid, `${message}\n${USAGE}`);
}

export async function main(argv: readonly string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return action === undefined ? 2 : 0;
  }
  if (action !== 'start' && action !== 'stop' && action !== 'status') throw usageError(`unknown kafka action ${JSON.stringify(action)}`);
  const allowed = action === 'start' ? ['--fresh'] : [];
  const unknown = rest.filter((arg) => !allowed.includes(arg));
  if (unknown.length > 0) throw usageError(`kafka ${action} does not take ${unknown.map((a) => JSON.stringify(a)).join(' ')}`);

  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const cfg = config.kafkaLocal;
  const out = (line: string): void => { process.stdout.write(`${line}\n`); };

  switch (action) {
    case 'start': {
      const result = await startKafka(cfg, logger, { fresh: rest.includes('--fresh') });
      const id = result.clusterId === undefined ? '' : `, cluster id ${result.clusterId}`;
      out(result.alreadyRunning
        ? `kafka already running on 127.0.0.1:${result.port} (pid ${result.pid}${id})`
        : `kafka ready on 127.0.0.1:${result.port} (pid ${result.pid}, ${result.elapsedMs} ms${id}`
          + `${result.formatted ? ', new empty storage' : ''})`);
      return 0;
    }
    case 'stop': {
      const result = await stopKafka(cfg, logger);
      out(result.wasRunning
        ? `kafka stopped (pid ${result.pid}, ${result.elapsedMs} ms${result.forced ? ', killed with SIGKILL' : ''})`
        : 'kafka was not running');
      return 0;
    }
    case 'status': {
      const status = await kafkaStatus(cfg);
      if (status.state === 'running') {
        out(`kafka running on 127.0.0.1:${status.port} (pid ${status.pid}, `
          + `${status.accepting ? 'accepting connections' : 'NOT accepting connections: starting or wedged'})`);
        return status.accepting ? 0 : 1;
      }
      const data = status.formatted ? `data kept in ${kafkaPaths(cfg).data}` : 'no data yet';
      out(`kafka stopped (port ${status.port}, ${data}`
        + `${status.portInUse ? `; port ${status.port} is in use by another process` : ''})`);
      return EXIT_NOT_RUNNING;
    }
  }
}
