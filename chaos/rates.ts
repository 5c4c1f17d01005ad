/** What the chaos run's load achieved, from the pushes counted after each churn round. */
export interface LoadRates {
  readonly seconds: number;
  /** Pushes sent over the whole load, per second: the faults (wxsync down, the spool refusing) included. */
  readonly average: number;
  /** The most pushes per second over any stretch of at least `windowMs` between two rounds' ends. */
  readonly busiest: number;
}

/** `marks`: [milliseconds, pushes sent so far] at the load's start (0 sent) and after each round, in order. */
export function loadRates(marks: readonly (readonly [number, number])[], windowMs: number): LoadRates {
  const first = marks[0];
  const last = marks.at(-1);
  if (first === undefined || last === undefined || last[0] <= first[0]) return { seconds: 0, average: 0, busiest: 0 };
  const seconds = (last[0] - first[0]) / 1000;
  let busiest = 0;
  for (let i = 0; i < marks.length; i += 1) {
    for (let j = i + 1; j < marks.length; j += 1) {
      const [from, before] = marks[i] as readonly [number, number];
      const [to, after] = marks[j] as readonly [number, number];
      if (to - from >= windowMs) busiest = Math.max(busiest, (after - before) / ((to - from) / 1000));
    }
  }
  return { seconds, average: (last[1] - first[1]) / seconds, busiest };
}
