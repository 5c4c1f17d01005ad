/**
 * The edge dedupe window: WeChat re-sends a push it got no answer for (up to 3 deliveries within ~15 s,
 * wechat-protocol.md §5.3), with the same event, so the same event id. A retry that arrives while the first
 * delivery is still being published waits for that publish; one that arrives after it answers at once.
 * Bounded in time and size; the store deduplicates by id too, so an evicted id costs a duplicate row at
 * worst, never a wrong follower.
 */
export class EdgeDedupe<T> {
  private readonly entries = new Map<string, Promise<T>>();
  /**
   * Settled entries in the order they expire, from `head` on: eviction looks only at the front. (Iterating
   * the map instead skips every slot its deletes left behind, tens of µs per call once the map is full.)
   */
  private expiring: { readonly id: string; readonly settled: Promise<T>; readonly expiresAt: number }[] = [];
  private head = 0;

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Runs `publish` once per id within the window; `duplicate` says this call reused an earlier one. */
  async once(id: string, publish: () => Promise<T>): Promise<{ readonly outcome: T; readonly duplicate: boolean }> {
    this.evict(this.now());
    const existing = this.entries.get(id);
    if (existing !== undefined) return { outcome: await existing, duplicate: true };
    const settled = publish();
    this.entries.set(id, settled);
    try {
      const outcome = await settled;
      this.expiring.push({ id, settled, expiresAt: this.now() + this.windowMs });
      return { outcome, duplicate: false };
    } catch (error) {
      // A failed publish was answered with an error: WeChat's retry must be allowed to try again.
      if (this.entries.get(id) === settled) this.entries.delete(id);
      throw error;
    }
  }

  // Pending entries are never evicted: there are no more of them than requests in flight.
  private evict(now: number): void {
    while (this.head < this.expiring.length) {
      const oldest = this.expiring[this.head] as (typeof this.expiring)[number];
      if (this.entries.size < this.maxEntries && oldest.expiresAt > now) break;
      this.head += 1;
      if (this.entries.get(oldest.id) === oldest.settled) this.entries.delete(oldest.id);
    }
    if (this.head > 1024 && this.head * 2 > this.expiring.length) {
      this.expiring = this.expiring.slice(this.head);
      this.head = 0;
    }
  }
}
