/** Build events, printed by a reporter: progress on a TTY, plain lines in CI, JSON lines for machines. */
export type BuildEvent =
  | { type: 'start'; parts: number; toBuild: number; jobs: number }
  | { type: 'part-start'; part: string; kind: string; reason: string }
  | { type: 'part-cached'; part: string; kind: string; relinked: boolean }
  | { type: 'part-done'; part: string; kind: string; seconds: number }
  | { type: 'part-failed'; part: string; kind: string; seconds: number; error: string; log: string }
  | { type: 'part-skipped'; part: string; because: string }
  | { type: 'part-notice'; part: string; message: string }
  | { type: 'uninstall'; part: string; location: string }
  | { type: 'waiting-for-lock'; pid: number }
  | { type: 'end'; ok: boolean; built: number; cached: number; failed: number; skipped: number; seconds: number };

export interface Reporter {
  event(e: BuildEvent): void;
  close(): void;
}

const dur = (s: number) => (s < 10 ? `${s.toFixed(2)}s` : s < 120 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`);

export class JsonReporter implements Reporter {
  constructor(private out: NodeJS.WritableStream = process.stdout) {}
  event(e: BuildEvent): void {
    this.out.write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n');
  }
  close(): void {}
}

export class PlainReporter implements Reporter {
  constructor(private out: NodeJS.WritableStream = process.stderr, private verbose = false) {}
  event(e: BuildEvent): void {
    const w = (s: string) => this.out.write(`kiln: ${s}\n`);
    switch (e.type) {
      case 'start':
        w(`${e.parts} parts, ${e.toBuild} to build, -j${e.jobs}`);
        break;
      case 'part-start':
        w(`building ${e.part} (${e.kind}): ${e.reason}`);
        break;
      case 'part-cached':
        if (this.verbose || e.relinked) w(`cached   ${e.part}${e.relinked ? ' (restored from store)' : ''}`);
        break;
      case 'part-done':
        w(`built    ${e.part} in ${dur(e.seconds)}`);
        break;
      case 'part-failed':
        w(`FAILED   ${e.part} (${e.kind}) after ${dur(e.seconds)}\n${e.error.replace(/^/gm, '  ')}\n  log: ${e.log}`);
        break;
      case 'part-skipped':
        w(`skipped  ${e.part}: ${e.because}`);
        break;
      case 'part-notice':
        w(`note     ${e.part}: ${e.message}`);
        break;
      case 'uninstall':
        w(`removed  ${e.part} (no longer in the config)`);
        break;
      case 'waiting-for-lock':
        w(`waiting for another kiln build (pid ${e.pid}) to finish`);
        break;
      case 'end':
        w(`${e.ok ? 'done' : 'FAILED'}: ${e.built} built, ${e.cached} cached, ${e.failed} failed, ${e.skipped} skipped in ${dur(e.seconds)}`);
        break;
    }
  }
  close(): void {}
}

/** A live status line on a terminal, with the plain lines above it. */
export class TtyReporter implements Reporter {
  private running = new Map<string, number>();
  private total = 0;
  private finished = 0;
  private timer: NodeJS.Timeout | undefined;
  private plain: PlainReporter;
  constructor(private out: NodeJS.WriteStream = process.stderr) {
    this.plain = new PlainReporter(out);
  }
  private clear() {
    this.out.write('\r\x1b[2K');
  }
  private draw() {
    if (this.running.size === 0) return;
    const now = Date.now();
    const names = [...this.running].map(([n, t]) => `${n} ${Math.floor((now - t) / 1000)}s`).join(', ');
    const line = `[${this.finished}/${this.total}] running: ${names}`;
    this.out.write('\r\x1b[2K' + line.slice(0, (this.out.columns || 100) - 1));
  }
  event(e: BuildEvent): void {
    this.clear();
    if (e.type === 'start') {
      this.total = e.parts;
      this.timer = setInterval(() => this.draw(), 500);
      this.timer.unref();
    }
    if (e.type === 'part-start') this.running.set(e.part, Date.now());
    if (e.type === 'part-done' || e.type === 'part-failed' || e.type === 'part-cached' || e.type === 'part-skipped') {
      this.running.delete(e.part);
      this.finished++;
    }
    if (e.type !== 'part-start') this.plain.event(e);
    else this.out.write(`kiln: building ${e.part} (${e.kind}): ${e.reason}\n`);
    if (e.type === 'end') this.close();
    else this.draw();
  }
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
