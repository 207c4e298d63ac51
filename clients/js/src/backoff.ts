/**
 * The wait in milliseconds before retry `n` (1-based), given `r`, a random
 * number in [0, 1), rounded to the millisecond: the ceiling grows as `min * factor^n`, capped at `max`,
 * and the wait is drawn uniformly between `min` and the ceiling (full
 * jitter above the floor). The same formula as the Go client's.
 */
export function backoff(n: number, min: number, max: number, factor: number, r: number): number {
  let ceiling = min * Math.pow(factor, n);
  if (!Number.isFinite(ceiling) || ceiling > max) ceiling = max;
  const d = Math.round(min + r * (ceiling - min));
  return Math.min(Math.max(d, min), max);
}
