import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../lib/config.ts';
import { ErrorCode, isWxsyncError } from '../../lib/errors.ts';
import {
  KAFKA_VERSION, acceptsConnections, ensureKafkaJars, kafkaPaths, kafkaStatus, startKafka, stopKafka,
  type KafkaLocalConfig,
} from '../../lib/kafka-local.ts';
import { silentLogger } from '../../lib/logger.ts';
import { freePorts } from '../../lib/ports.ts';

const logger = silentLogger();

/**
 * A raw ApiVersions v0 round trip: proves a Kafka broker (not just any socket) answers, without kafkajs,
 * which only lib/kafka.ts may import.
 */
function apiVersions(port: number, timeoutMs = 5000): Promise<{ errorCode: number; apiCount: number }> {
  return new Promise((resolve, reject) => {
    const clientId = Buffer.from('wxsync-test');
    const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
    body.writeInt16BE(18, 0);
    body.writeInt16BE(0, 2);
    body.writeInt32BE(4242, 4);
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    socket.setTimeout(timeoutMs, () => { socket.destroy(new Error(`no ApiVersions answer within ${timeoutMs} ms`)); });
    socket.once('error', reject);
    socket.once('connect', () => { socket.write(Buffer.concat([size, body])); });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      socket.destroy();
      if (received.readInt32BE(4) !== 4242) {
        reject(new Error('ApiVersions answer carries the wrong correlation id'));
        return;
      }
      resolve({ errorCode: received.readInt16BE(8), apiCount: received.readInt32BE(10) });
    });
  });
}

describe('the local Kafka broker (wxsync kafka start|stop|status)', { timeout: 300_000 }, () => {
  const dirs: string[] = [];
  let cfg: KafkaLocalConfig | undefined;
  let libs = '';

  function tempKafkaDir(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-kafka-local-'));
    dirs.push(dir);
    // The jars are shared with the project cache: a test must not fetch 57 jars again.
    symlinkSync(libs, path.join(dir, `libs-${KAFKA_VERSION}`));
    return dir;
  }

  function config(): KafkaLocalConfig {
    assert.ok(cfg, 'before() did not finish');
    return cfg;
  }

  before(async () => {
    const shared = loadConfig({ WXSYNC_KAFKA_DIR: process.env['WXSYNC_KAFKA_DIR'] ?? '' }).kafkaLocal;
    libs = await ensureKafkaJars(shared, logger);
    const [port, controllerPort] = await freePorts(2);
    assert.ok(port !== undefined && controllerPort !== undefined);
    cfg = { ...shared, dir: tempKafkaDir(), port, controllerPort, heap: '-Xms256m -Xmx512m', startTimeoutMs: 90_000 };
  });

  after(async () => {
    if (cfg !== undefined) await stopKafka(cfg, logger);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('reports stopped before the first start', async () => {
    const status = await kafkaStatus(config());
    assert.equal(status.state, 'stopped');
    assert.equal(status.formatted, false);
  });

  it('starts a broker that answers Kafka requests on the configured port', async () => {
    const c = config();
    const result = await startKafka(c, logger);
    assert.equal(result.alreadyRunning, false);
    assert.equal(result.formatted, true);
    assert.equal(result.port, c.port);
    assert.ok(result.elapsedMs < c.startTimeoutMs);

    const status = await kafkaStatus(c);
    assert.deepEqual(status, { state: 'running', pid: result.pid, port: c.port, accepting: true, clusterId: result.clusterId });
    const answer = await apiVersions(c.port);
    assert.equal(answer.errorCode, 0);
    assert.ok(answer.apiCount > 10, `only ${answer.apiCount} APIs advertised`);

    const paths = kafkaPaths(c);
    const properties = readFileSync(paths.properties, 'utf8');
    assert.match(properties, /^auto\.create\.topics\.enable=false$/m);
    assert.match(properties, /^num\.partitions=1$/m);
    assert.match(properties, /^log\.retention\.hours=168$/m);
    const maxBytes = Number(/^message\.max\.bytes=(\d+)$/m.exec(properties)?.[1]);
    assert.ok(maxBytes >= 4 * 1024 * 1024, `message.max.bytes is ${maxBytes}`);
    assert.equal(readFileSync(paths.clusterId, 'utf8').trim(), result.clusterId);
    assert.match(readFileSync(paths.meta, 'utf8'), new RegExp(`^cluster\\.id=${result.clusterId ?? 'missing'}$`, 'm'));
    assert.equal(readFileSync(paths.pid, 'utf8').trim(), String(result.pid));
  });

  it('does nothing when started again', async () => {
    const c = config();
    const before = await kafkaStatus(c);
    assert.equal(before.state, 'running');
    const result = await startKafka(c, logger);
    assert.equal(result.alreadyRunning, true);
    assert.equal(result.pid, before.pid);
    assert.equal((await apiVersions(c.port)).errorCode, 0);
  });

  it('refuses with a clear error when the port belongs to another process', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => { squatter.listen({ host: '127.0.0.1', port: 0 }, resolve); });
    try {
      const taken = (squatter.address() as net.AddressInfo).port;
      const [controllerPort] = await freePorts(1);
      assert.ok(controllerPort !== undefined);
      const other: KafkaLocalConfig = { ...config(), dir: tempKafkaDir(), port: taken, controllerPort };
      await assert.rejects(startKafka(other, logger), (error: unknown) => {
        assert.ok(isWxsyncError(error, ErrorCode.KafkaLocalFailed), String(error));
        assert.match(error.message, new RegExp(`port ${taken} .*already in use by another process`));
        assert.match(error.message, /WXSYNC_KAFKA_PORT/);
        return true;
      });
      assert.equal(existsSync(kafkaPaths(other).run), false, 'nothing was prepared for a start that cannot work');
      const status = await kafkaStatus(other);
      assert.equal(status.state === 'stopped' && status.portInUse, true);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('stops the broker, and stopping again is a no-op', async () => {
    const c = config();
    const running = await kafkaStatus(c);
    assert.equal(running.state, 'running');
    const stopped = await stopKafka(c, logger);
    assert.equal(stopped.wasRunning, true);
    assert.equal(stopped.pid, running.pid);
    assert.equal(stopped.forced, false, 'SIGTERM was enough');

    const status = await kafkaStatus(c);
    assert.equal(status.state, 'stopped');
    assert.equal(status.formatted, true);
    assert.equal(await acceptsConnections(c.port), false);
    assert.equal(existsSync(kafkaPaths(c).pid), false);
    assert.deepEqual(await stopKafka(c, logger), { wasRunning: false });
  });

  it('keeps its storage and cluster id across a restart', async () => {
    const c = config();
    const paths = kafkaPaths(c);
    const meta = readFileSync(paths.meta, 'utf8');
    const clusterId = readFileSync(paths.clusterId, 'utf8').trim();

    const result = await startKafka(c, logger);
    assert.equal(result.alreadyRunning, false);
    assert.equal(result.formatted, false);
    assert.equal(result.clusterId, clusterId);
    assert.equal(readFileSync(paths.meta, 'utf8'), meta);
    assert.equal(readFileSync(paths.clusterId, 'utf8').trim(), clusterId);
    assert.equal((await apiVersions(c.port)).errorCode, 0);
    assert.ok(existsSync(paths.previousLog), 'the previous run\'s log is kept');
  });

  it('wipes everything on a fresh start, even while running', async () => {
    const c = config();
    const before = await kafkaStatus(c);
    assert.equal(before.state, 'running');
    const result = await startKafka(c, logger, { fresh: true });
    assert.equal(result.alreadyRunning, false);
    assert.equal(result.formatted, true);
    assert.notEqual(result.clusterId, before.clusterId);
    assert.notEqual(result.pid, before.pid);
    assert.equal((await apiVersions(c.port)).errorCode, 0);
  });
});
