import { pino, type Logger } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * JSON logs go to stderr: stdout belongs to command output (`followers` prints openids, `sim` prints
 * its ready line), which scripts parse. Writes are synchronous so the last lines before an exit (the
 * shutdown summary, a fatal error) are never lost; wxsync logs per batch, not per record.
 */
export function createLogger(level: LogLevel, name = 'wxsync'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
