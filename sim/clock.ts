/**
 * The simulator's notion of now. Token lifetimes (7200 s), daily quotas and per-minute windows run on
 * it, so tests can jump hours ahead instead of waiting; it only ever moves forward.
 */
export class SimClock {
  private offsetMs = 0;

  constructor(private readonly source: () => number = Date.now) {}

  nowMs(): number {
    return this.source() + this.offsetMs;
  }

  /** Unix seconds, as WeChat's CreateTime, subscribe_time and token lifetimes count them. */
  nowSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  get offsetSeconds(): number {
    return this.offsetMs / 1000;
  }

  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError('the clock only moves forward');
    this.offsetMs += Math.round(seconds * 1000);
  }
}

export function minuteOf(unixSeconds: number): number {
  return Math.floor(unixSeconds / 60);
}
