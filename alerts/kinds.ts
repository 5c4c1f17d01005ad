/**
 * The alert kinds: stable ids used in the texts, the `wxsync_alerts_firing{kind}` gauge, the webhooks' `kinds`
 * filter and the Prometheus rules' `kind` label.
 */
export const ALERT_KINDS = [
  'drift',
  'pushes_lost',
  'spool_not_draining',
  'consumer_stuck',
  'snapshot_failed',
  'snapshot_overdue',
  'quota_low',
  'reconcile_refused',
  'pushes_refused_spike',
  'datacube_disagrees',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export function isAlertKind(value: unknown): value is AlertKind {
  return (ALERT_KINDS as readonly unknown[]).includes(value);
}
