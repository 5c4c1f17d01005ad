/**
 * The edge dedupe window: WeChat re-sends a push it got no answer for (up to 3 deliveries within ~15 s,
 * wechat-protocol.md §5.3), with the same event, so the same event id. A retry that arrives while the first
 * delivery is still being published waits for that publish; one that arrives after it answers at once.
 * Bounded in time and size; the store deduplicates by id too, so an evicted id costs a duplicate row at
 * worst, never a wrong follower.
 */
export class EdgeDedupe<T> {
  private readonly entries = new Map<string, { readonly settled: Promise<T>; expiresAt: number }>();

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
    const now = this.now();
    this.evict(now);
    const existing = this.entries.get(id);
    if (existing !== undefined) return { outcome: await existing.settled, duplicate: true };
    const settled = publish();
    const entry = { settled, expiresAt: Number.POSITIVE_INFINITY };
    this.entries.set(id, entry);
    try {
      const outcome = await settled;
      // Moved to the end, so the map stays ordered by expiry and eviction only looks at its head.
      this.entries.delete(id);
      entry.expiresAt = this.now() + this.windowMs;
      this.entries.set(id, entry);
      return { outcome, duplicate: false };
    } catch (error) {
      // A failed publish was answered with an error: WeChat's retry must be allowed to try again.
      if (this.entries.get(id) === entry) this.entries.delete(id);
      throw error;
    }
  }

  private evict(now: number): void {
    for (const [id, entry] of this.entries) {
      if (this.entries.size < this.maxEntries && entry.expiresAt > now) break;
      // Pending entries are never evicted by age (their expiry is infinite) but may be by size.
      this.entries.delete(id);
    }
  }
}
