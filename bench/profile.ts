/**
 * CPU profiles of this process through the inspector (the same sampler as `node --cpu-prof`), reduced
 * to milliseconds per component: each sample goes to the innermost frame that belongs to a known
 * component (a package, a project file, a Node subsystem); native frames (JSON.stringify, crypto
 * bindings) count for the JavaScript that called them.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/** CPU milliseconds by component over a profiled run. */
export interface CpuBreakdown {
  /** Wall time of the run. */
  readonly wallMs: number;
  /** Sampled time outside idle: JavaScript, native, GC. */
  readonly cpuMs: number;
  /** Component -> CPU ms (whole run), largest first. */
  readonly components: Array<{ name: string; ms: number }>;
  /** The hottest functions by self time (whole run), for the curious. */
  readonly topFunctions: Array<{ name: string; ms: number }>;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The component a script URL belongs to, or undefined for native code (no URL). */
export function componentOf(url: string): string | undefined {
  if (!url) return undefined;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) {
    if (pkg.startsWith('@aws-sdk/') || pkg.startsWith('@smithy/') || pkg.startsWith('@aws-crypto/')) return 'AWS SDK';
    return pkg;
  }
  if (url.startsWith('node:internal/deps/undici')) return 'fetch (undici, Node built-in)';
  if (/^node:(_http_|http$|internal\/http)/.test(url)) return 'Node http (server and client)';
  if (/^node:(net|internal\/(stream|streams|net|dgram|dns))|^node:stream/.test(url)) return 'Node net and streams';
  if (/^node:(internal\/)?(crypto|webcrypto)/.test(url)) return 'Node crypto';
  if (/^node:internal\/(url|querystring)|^node:url/.test(url)) return 'Node URL';
  if (/^node:internal\/(timers|process\/task_queues|async_hooks|process\/)/.test(url)) return 'Node timers and tasks';
  if (url.startsWith('node:')) return 'Node other';
  const file = /\/(functions|infra|bench|test)\/(.*)$/.exec(url);
  if (file) return `${file[1]}/${file[2].replace(/\?.*$/, '')}`;
  return url.replace(/^file:\/\//, '');
}

/** Reduces a profile to components; see the module documentation. */
export function breakDown(profile: Profile, wallMs: number): CpuBreakdown {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const componentCache = new Map<number, string>();
  const component = (id: number): string => {
    const cached = componentCache.get(id);
    if (cached) return cached;
    const node = byId.get(id)!;
    const name = node.callFrame.functionName;
    let result: string;
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)' || name === '(root)') {
      result = name;
    } else if (node.callFrame.url === 'node:inspector') {
      // Starting and stopping the profiler itself: not part of what is measured.
      result = '(idle)';
    } else {
      const own = componentOf(node.callFrame.url);
      const up = parent.get(id);
      result = own ?? (up === undefined ? '(native)' : component(up));
      if (result === '(root)') result = '(native)';
    }
    componentCache.set(id, result);
    return result;
  };
  const totals = new Map<string, number>();
  const functions = new Map<string, number>();
  let cpu = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample: it belongs to the previous sample's frame.
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const id = profile.samples[i];
    const name = component(id);
    totals.set(name, (totals.get(name) ?? 0) + ms);
    if (name !== '(idle)') {
      cpu += ms;
      const frame = byId.get(id)!.callFrame;
      const label = `${frame.functionName || '(anonymous)'} ${componentOf(frame.url) ?? name}:${frame.lineNumber + 1}`;
      functions.set(label, (functions.get(label) ?? 0) + ms);
    }
  }
  const sorted = (map: Map<string, number>) =>
    [...map]
      .filter(([name]) => name !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => ({ name, ms: Math.round(ms * 100) / 100 }));
  return {
    wallMs,
    cpuMs: Math.round(cpu * 100) / 100,
    components: sorted(totals),
    topFunctions: sorted(functions).slice(0, 15),
  };
}

/** A profiler session of this process; each {@link CpuProfiler.profile} call is one profile. */
export class CpuProfiler {
  private readonly session = new Session();

  async open(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    // 100 µs: a callback is a few milliseconds of CPU; the default 1 ms would see a handful of samples.
    await this.session.post('Profiler.setSamplingInterval', { interval: 100 });
  }

  private started = 0;

  /** Profiles `run`; writes the raw profile to `file` when given (opens in Chrome DevTools). */
  async profile(run: () => Promise<void>, file?: string): Promise<CpuBreakdown> {
    await this.start();
    await run();
    return this.stop(file);
  }

  /** Starts one profile (for work this process does on another's request, such as a server's). */
  async start(): Promise<void> {
    await this.session.post('Profiler.start');
    this.started = performance.now();
  }

  /** Ends the profile {@link start} began; writes it to `file` when given. */
  async stop(file?: string): Promise<CpuBreakdown> {
    const wallMs = performance.now() - this.started;
    const { profile } = (await this.session.post('Profiler.stop')) as unknown as { profile: Profile };
    if (file) writeFileSync(file, JSON.stringify(profile));
    return breakDown(profile, wallMs);
  }

  close(): void {
    this.session.disconnect();
  }
}

/**
 * Many profiles of the same work as one, per run: the mean per component (a component of 0.1 ms
 * is missed by most single runs, so a median would drop it) and the median of the totals. On a busy
 * machine the sampler also charges time this process was preempted to the frame it was in, which
 * inflates components in proportion to their time on the CPU.
 */
export function meanBreakdown(runs: readonly CpuBreakdown[]): CpuBreakdown {
  const mid = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  };
  const names = new Set(runs.flatMap((r) => r.components.map((c) => c.name)));
  const of = (r: CpuBreakdown, name: string) => r.components.find((c) => c.name === name)?.ms ?? 0;
  const functions = new Map<string, number>();
  for (const r of runs)
    for (const f of r.topFunctions) functions.set(f.name, (functions.get(f.name) ?? 0) + f.ms / runs.length);
  const round2 = (v: number) => Math.round(v * 100) / 100;
  return {
    wallMs: round2(mid(runs.map((r) => r.wallMs))),
    cpuMs: round2(mid(runs.map((r) => r.cpuMs))),
    components: [...names]
      .map((name) => ({ name, ms: round2(runs.reduce((sum, r) => sum + of(r, name), 0) / runs.length) }))
      .filter((c) => c.ms > 0)
      .sort((a, b) => b.ms - a.ms),
    topFunctions: [...functions]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([name, ms]) => ({ name, ms: round2(ms) })),
  };
}
