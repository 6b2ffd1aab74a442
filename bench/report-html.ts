/**
 * `bench/results/report.html`: the run's figures as one self-contained page, charts drawn as inline
 * SVG (no script, no external font or stylesheet), the markdown tables below them.
 */
import type { CostResult } from './cost-model';
import type { BenchResults } from './run';
import { escapeHtml } from '../functions/core/http';

const COLORS = ['#2f6db5', '#e07b28', '#3a9a5b', '#b8434a', '#7d5fb2', '#8c8c8c'];

interface Series {
  readonly name: string;
  readonly values: ReadonlyArray<number | undefined>;
}

interface BarChart {
  readonly title: string;
  readonly categories: readonly string[];
  readonly series: readonly Series[];
  readonly unit: string;
  /** Logarithmic value axis (for values that span decades). */
  readonly log?: boolean;
  /** A dashed line per series and category, e.g. the goal (floor × 1.10). */
  readonly markers?: ReadonlyArray<{ readonly label: string; readonly values: ReadonlyArray<number | undefined> }>;
  readonly note?: string;
}

const fmt = (v: number) =>
  v >= 1000 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2);

/** A grouped vertical bar chart as an SVG element. */
export function barChart(chart: BarChart): string {
  const width = 760;
  const height = 320;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = 70;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const all = [...chart.series.flatMap((s) => s.values), ...(chart.markers ?? []).flatMap((m) => m.values)].filter(
    (v): v is number => v !== undefined && v > 0,
  );
  const max = Math.max(...all, 1e-9);
  const min = chart.log ? Math.min(...all) : 0;
  const lo = chart.log ? 10 ** Math.floor(Math.log10(min)) : 0;
  const hi = chart.log ? 10 ** Math.ceil(Math.log10(max)) : niceCeil(max);
  const y = (v: number) =>
    chart.log
      ? top + plotH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH
      : top + plotH - (v / hi) * plotH;
  const ticks = chart.log
    ? Array.from({ length: Math.round(Math.log10(hi) - Math.log10(lo)) + 1 }, (_, i) => lo * 10 ** i)
    : Array.from({ length: 6 }, (_, i) => (hi * i) / 5);
  const groupW = plotW / chart.categories.length;
  const barW = Math.min(48, (groupW * 0.8) / chart.series.length);
  const parts: string[] = [];
  parts.push(`<text x="${left}" y="22" class="title">${escapeHtml(chart.title)}</text>`);
  for (const t of ticks) {
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(t)}" y2="${y(t)}" class="grid"/>`,
      `<text x="${left - 6}" y="${y(t) + 4}" class="tick" text-anchor="end">${fmt(t)}</text>`,
    );
  }
  parts.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" class="tick" text-anchor="middle">${escapeHtml(chart.unit)}</text>`,
  );
  chart.categories.forEach((category, c) => {
    const x0 = left + c * groupW + (groupW - barW * chart.series.length) / 2;
    chart.series.forEach((s, k) => {
      const v = s.values[c];
      if (v === undefined) return;
      const x = x0 + k * barW;
      const h = top + plotH - y(v);
      parts.push(
        `<rect x="${x + 2}" y="${y(v)}" width="${barW - 4}" height="${Math.max(h, 0.5)}" fill="${COLORS[k % COLORS.length]}"><title>${escapeHtml(`${s.name}, ${category}: ${fmt(v)} ${chart.unit}`)}</title></rect>`,
        `<text x="${x + barW / 2}" y="${y(v) - 4}" class="value" text-anchor="middle">${fmt(v)}</text>`,
      );
      for (const marker of chart.markers ?? []) {
        const mv = marker.values[c * chart.series.length + k];
        if (mv === undefined) continue;
        parts.push(
          `<line x1="${x}" x2="${x + barW}" y1="${y(mv)}" y2="${y(mv)}" class="marker"><title>${escapeHtml(`${marker.label}: ${fmt(mv)}`)}</title></line>`,
        );
      }
    });
    parts.push(
      `<text x="${left + c * groupW + groupW / 2}" y="${top + plotH + 18}" class="tick" text-anchor="middle">${escapeHtml(category)}</text>`,
    );
  });
  // Legend.
  let lx = left;
  const ly = height - 22;
  chart.series.forEach((s, k) => {
    parts.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[k % COLORS.length]}"/>`,
      `<text x="${lx + 16}" y="${ly}" class="tick">${escapeHtml(s.name)}</text>`,
    );
    lx += 24 + s.name.length * 7;
  });
  for (const marker of chart.markers ?? []) {
    parts.push(
      `<line x1="${lx}" x2="${lx + 14}" y1="${ly - 4}" y2="${ly - 4}" class="marker"/>`,
      `<text x="${lx + 18}" y="${ly}" class="tick">${escapeHtml(marker.label)}</text>`,
    );
    lx += 30 + marker.label.length * 7;
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(chart.title)}">${parts.join('')}</svg>`;
  return `<figure>${svg}${chart.note ? `<figcaption>${escapeHtml(chart.note)}</figcaption>` : ''}</figure>`;
}

function niceCeil(v: number): number {
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * exp >= v) return step * exp;
  return 10 * exp;
}

/** Markdown tables to HTML: just what the bench's markdown uses (headings, tables, paragraphs, bold, code). */
function markdownToHtml(markdown: string): string {
  const inline = (text: string) =>
    escapeHtml(text)
      .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
      .replace(/&#96;(.+?)&#96;/g, '<code>$1</code>')
      .replace(/&#60;br&#62;/g, '<br>');
  const out: string[] = [];
  const blocks = markdown.split(/\n{2,}/);
  for (const block of blocks) {
    const lines = block.split('\n');
    if (lines[0].startsWith('#')) {
      const level = Math.min(6, lines[0].match(/^#+/)![0].length);
      out.push(`<h${level}>${inline(lines[0].replace(/^#+\s*/, ''))}</h${level}>`);
    } else if (lines.every((l) => l.startsWith('|'))) {
      const cells = (l: string) =>
        l
          .slice(1, -1)
          .split(' | ')
          .map((c) => c.trim());
      const [head, , ...rows] = lines;
      out.push(
        `<table><thead><tr>${cells(head)
          .map((c) => `<th>${inline(c)}</th>`)
          .join('')}</tr></thead><tbody>${rows
          .map(
            (r) =>
              `<tr>${cells(r)
                .map((c) => `<td>${inline(c)}</td>`)
                .join('')}</tr>`,
          )
          .join('')}</tbody></table>`,
      );
    } else {
      out.push(`<p>${inline(block)}</p>`);
    }
  }
  return out.join('\n');
}

/** The whole page. */
export function reportHtml(results: BenchResults, markdown: string): string {
  const charts: string[] = [];
  const cold = results.coldStart;
  if (cold) {
    const bundles = [cold.floor, ...cold.handlers];
    charts.push(
      barChart({
        title: 'Import CPU time per handler bundle vs the SDK floor (p50)',
        categories: bundles.map((b) => (b === cold.floor ? 'floor' : b.name)),
        series: cold.nodes.map((node, k) => ({
          name: node.label,
          values: bundles.map((b) => b.byNode[k]?.cpuMs.p50),
        })),
        unit: 'ms CPU',
        markers: [
          {
            label: `goal: floor × ${cold.goal.toFixed(2)}`,
            values: bundles.flatMap(() => cold.nodes.map((_, k) => cold.floor.byNode[k].cpuMs.p50 * cold.goal)),
          },
        ],
        note: 'Fresh process per import, CPU time around the import; each Node version against its own floor. Wall times are in the table below.',
      }),
    );
  }
  const refresher = results.refresher;
  if (refresher && refresher.sizes.length > 0) {
    charts.push(
      barChart({
        title: 'Refresher: DynamoDB read units per cycle vs users (log scale)',
        categories: refresher.sizes.map((s) => `${s.users.toLocaleString('en-US')} users`),
        series: [
          {
            name: `cycle (${Math.round(refresher.dueFraction * 100)}% due)`,
            values: refresher.sizes.map((s) => s.readUnits || undefined),
          },
          { name: 'cycle, 10 due', values: refresher.sizes.map((s) => s.fixedDueCycleReadUnits || undefined) },
          { name: 'one full Scan', values: refresher.sizes.map((s) => s.scanReadUnits || undefined) },
        ],
        unit: 'RCU',
        log: true,
        note: 'A cycle reads only the keys-only due index; a scanning refresher would pay the last bar every 5 minutes.',
      }),
    );
  }
  const cost = results.cost;
  if (cost) {
    const users = [...new Set(cost.rows.map((r) => r.ops.users))];
    const policies = [...new Set(cost.rows.map((r) => r.policy))];
    const byPolicy = (pick: (row: CostResult['rows'][number]) => number) =>
      policies.map((p) => ({
        name: p,
        values: users.map((u) => {
          const row = cost.rows.find((r) => r.policy === p && r.ops.users === u);
          return row && pick(row);
        }),
      }));
    const pattern = cost.policies.pattern;
    const patternNote =
      `Read pattern: ${Math.round(pattern.activeShare * 100)}% of users active a day, ${pattern.sessionsPerDay} sessions of ` +
      `${pattern.readsPerSession} reads; counts from a simulated day of the broker's code under each policy.`;
    charts.push(
      barChart({
        title: `Cost per month by policy and users (USD, us-east-1 list prices of ${cost.prices.date}, log scale)`,
        categories: users.map((u) => `${u.toLocaleString('en-US')} users`),
        series: byPolicy((r) => r.cost.total),
        unit: 'USD / month',
        log: true,
        note: `${patternNote} Other assumptions in the tables below.`,
      }),
      barChart({
        title: 'Kroger token calls per day by policy and users (log scale)',
        categories: users.map((u) => `${u.toLocaleString('en-US')} users`),
        series: byPolicy((r) => r.ops.providerCalls / (cost.assumptions.monthHours / 24)),
        unit: 'token calls / day',
        log: true,
        note: patternNote,
      }),
      barChart({
        title: 'DynamoDB write units per month by policy and users (log scale)',
        categories: users.map((u) => `${u.toLocaleString('en-US')} users`),
        series: byPolicy((r) => r.ops.dynamoWriteUnits),
        unit: 'WRU / month',
        log: true,
        note: patternNote,
      }),
    );
  }
  const read = results.readPath;
  if (read) {
    charts.push(
      barChart({
        title: 'getAccessToken latency (production mode, through the local Lambda stand-in)',
        categories: [
          'fresh p50',
          'fresh p95',
          'expired p50',
          'expired p95',
          '100 readers: holder p50',
          'waiters p50',
          'waiters p95',
        ],
        series: [
          {
            name: 'refresh fn: lease first (now)',
            values: [
              read.fresh.latency.p50,
              read.fresh.latency.p95,
              read.expired.latency.p50,
              read.expired.latency.p95,
              read.concurrent.holder.p50,
              read.concurrent.waiters.p50,
              read.concurrent.waiters.p95,
            ],
          },
          {
            name: 'reading first (before)',
            values: [
              undefined,
              undefined,
              read.readFirst.expired.latency.p50,
              read.readFirst.expired.latency.p95,
              read.readFirst.concurrent.holder.p50,
              read.readFirst.concurrent.waiters.p50,
              read.readFirst.concurrent.waiters.p95,
            ],
          },
        ],
        unit: 'ms',
        log: true,
        note: 'DynamoDB Local and the sandbox on this machine: ratios between bars mean more than the milliseconds.',
      }),
    );
  }
  const callback = results.callback;
  if (callback) {
    const o = callback.outsideParts;
    const d = callback.directParts;
    charts.push(
      barChart({
        title: 'Callback from outside vs the same I/O done directly (p50 per part)',
        categories: [
          'consume attempt',
          'POST /token',
          'GET profile',
          'write tokens',
          'around the I/O',
          'HTTP / loopback',
          'total',
        ],
        series: [
          {
            name: '/callback through the stack',
            values: [
              o.consumeAttempt.p50,
              o.token.p50,
              o.profile.p50,
              o.saveTokens.p50,
              o.handlerOwn.p50,
              o.httpAround.p50,
              callback.split.outsideMs.p50,
            ],
          },
          {
            name: 'direct',
            values: [
              d.consumeAttempt.p50,
              d.token.p50,
              d.profile.p50,
              d.saveTokens.p50,
              undefined,
              d.loopback.p50,
              callback.split.directMs.p50,
            ],
          },
        ],
        unit: 'ms',
      }),
    );
  }
  if (callback) {
    charts.push(
      barChart({
        title: 'Callback from outside: ratio to the same I/O done directly, by round (goal ≤ 1.10x)',
        categories: [...callback.perRound.map((_, k) => `round ${k + 1}`), 'all rounds', 'CPU'],
        series: [
          {
            name: 'outside / direct',
            values: [...callback.perRound.map((r) => r.ratio), callback.ratio, callback.cpuRatio],
          },
        ],
        unit: 'ratio',
        markers: [
          { label: 'goal 1.10x', values: [...callback.perRound.map(() => callback.goal), callback.goal, undefined] },
        ],
        note: 'Each round a new stack process; wall time ratio of the medians, and the CPU ratio of all rounds.',
      }),
    );
  }
  const m = results.machine;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kroger token broker: npm run bench</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:22px}h2,h3{margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:12.5px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}code{background:#f3f3f3;padding:0 3px}
figure{margin:16px 0}figcaption{color:#555;font-size:12.5px}
svg .title{font-size:14px;font-weight:600;fill:#222}svg .tick{font-size:11px;fill:#444}svg .value{font-size:10px;fill:#222}
svg .grid{stroke:#e4e4e4}svg .marker{stroke:#b8434a;stroke-width:2;stroke-dasharray:4 3}
</style></head><body>
<h1>Kroger token broker: npm run bench</h1>
<p>${escapeHtml(`${m.date.slice(0, 16).replace('T', ' ')} UTC, node ${m.node}, ${m.cpu} (${m.cores} cores), ${m.os}; whole run ${results.durationSeconds} s${results.quick ? ' (--quick)' : ''}.`)}</p>
${charts.join('\n')}
${markdownToHtml(markdown)}
</body></html>
`;
}
