import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type { Registry };
export { Counter, Gauge, Histogram };

/** One registry per process (not prom-client's global one), so tests can run several roles side by side. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'wxsync_' });
  return registry;
}
