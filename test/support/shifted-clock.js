// Test-only preload (`NODE_OPTIONS=--import …/shifted-clock.js`): this process's clock runs ahead by the number
// of milliseconds in the file WXSYNC_TEST_CLOCK_FILE names, read again at most every 20 ms, so a test can move a
// `wxsync run` and its commands through simulated days together with the simulator's clock.
import { readFileSync } from 'node:fs';

const file = process.env.WXSYNC_TEST_CLOCK_FILE;
if (file !== undefined && file !== '') {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  let offset = 0;
  let readAt = Number.NEGATIVE_INFINITY;
  const now = () => {
    const real = realNow();
    if (real - readAt > 20) {
      readAt = real;
      try {
        offset = Number(readFileSync(file, 'utf8')) || 0;
      } catch {
        // Not written yet: no offset.
      }
    }
    return real + offset;
  };
  class ShiftedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(now());
      else super(...args);
    }

    static now() {
      return now();
    }
  }
  globalThis.Date = ShiftedDate;
}
