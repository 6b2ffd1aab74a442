/**
 * Small helpers shared by the benchmark sections: order statistics, number formatting, markdown
 * tables and progress lines (stderr, so stdout stays the report).
 */

/** The q-quantile (0..1) of `values`, by the nearest-rank method (no interpolation between runs). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Median (nearest rank, so with an odd count it is the middle run itself). */
export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** Rounds to `digits` decimals for the report (JSON keeps the same rounded figure). */
export const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

/** `1234567` -> `1,234,567`. */
export const int = (value: number): string => Math.round(value).toLocaleString('en-US');

/** `1008.5` -> `1,008.5`: thousands separators, at most one decimal (read units come in halves). */
export const num = (value: number): string => value.toLocaleString('en-US', { maximumFractionDigits: 1 });

/** A ratio as shown in the tables, e.g. `1.04x`. */
export const ratio = (value: number): string => `${value.toFixed(2)}x`;

/** A GitHub-flavoured markdown table; columns whose cells are all numbers (or ratios, ms) are right-aligned. */
export function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((row) => row.map(String));
  const rightAligned = headers.map((_, i) =>
    cells.every((row) => /^[-+]?[\d.,]+(x|%| ms| KiB)?$|^n\/a$/.test(row[i] ?? '')),
  );
  const line = (values: readonly string[]) => `| ${values.join(' | ')} |`;
  return [line(headers), line(headers.map((_, i) => (rightAligned[i] ? '---:' : '---'))), ...cells.map(line)].join(
    '\n',
  );
}

/** A progress line on stderr, prefixed with the elapsed time of the whole run. */
export function progress(message: string): void {
  const elapsed = ((performance.now() - START) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${elapsed}s] ${message}\n`);
}
const START = performance.now();
