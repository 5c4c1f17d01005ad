import { Counter, Gauge, Histogram, type Registry } from '../../lib/metrics.ts';

export interface CallbackMetrics {
  readonly received: Counter<'method'>;
  readonly accepted: Counter<'outcome'>;
  readonly rejected: Counter<'reason'>;
  readonly ignored: Counter<'what'>;
  readonly duplicates: Counter;
  readonly spooled: Counter;
  readonly unavailable: Counter;
  readonly produceSeconds: Histogram;
}

export function createCallbackMetrics(registry: Registry, spoolDepth: () => number): CallbackMetrics {
  const registers = [registry];
  new Gauge({
    name: 'wxsync_callback_spool_depth',
    help: 'Callbacks in the local spool not yet acknowledged by Kafka',
    registers,
    collect() { this.set(spoolDepth()); },
  });
  return {
    received: new Counter({ name: 'wxsync_callback_received_total', help: 'Requests to /wechat/', labelNames: ['method'], registers }),
    accepted: new Counter({
      name: 'wxsync_callback_accepted_total',
      help: 'Verified pushes answered success, by outcome (published, spooled, duplicate, ignored)',
      labelNames: ['outcome'],
      registers,
    }),
    rejected: new Counter({ name: 'wxsync_callback_rejected_total', help: 'Pushes refused with a 4xx, by reason', labelNames: ['reason'], registers }),
    ignored: new Counter({ name: 'wxsync_callback_ignored_total', help: 'Verified messages that change no follower (SCAN, user messages)', labelNames: ['what'], registers }),
    duplicates: new Counter({ name: 'wxsync_callback_duplicates_total', help: 'Retried pushes answered from the dedupe window', registers }),
    spooled: new Counter({ name: 'wxsync_callback_spooled_total', help: 'Callbacks written to the local spool instead of Kafka', registers }),
    unavailable: new Counter({ name: 'wxsync_callback_unavailable_total', help: 'Pushes answered 503: neither Kafka nor the spool took them', registers }),
    produceSeconds: new Histogram({
      name: 'wxsync_callback_produce_seconds',
      help: 'Time from a batch handed to Kafka to its acknowledgement',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
  };
}
