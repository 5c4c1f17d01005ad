/** Shared by the benchmarks: aligned result lines so runs can be compared by eye and by grep. */
export function report(name: string, value: number, unit: string, note = ''): void {
  process.stdout.write(`${name.padEnd(44)} ${value.toLocaleString('en-US', { maximumFractionDigits: 1 }).padStart(14)} ${unit.padEnd(10)} ${note}\n`);
}

export function peakRssMb(): number {
  // maxRSS is in KiB on Linux.
  return process.resourceUsage().maxRSS / 1024;
}

export function parseCount(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/_/g, '').replace(/k$/i, '000').replace(/m$/i, '000000'));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`not a count: ${value}`);
  return n;
}
