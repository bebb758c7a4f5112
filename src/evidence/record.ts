/**
 * What happened during one build, taken from the engine's events (the Reporter stream): each
 * part's status, start offset, duration, why it was built, its error and log. Wall-clock facts
 * live here (out/.kiln/evidence/last-run.json), never in the manifest, SBOMs or provenance.
 */
import type { BuildEvent, Reporter } from '../engine/events.js';

export type PartStatus = 'built' | 'restored' | 'cached' | 'failed' | 'skipped' | 'not-run';

export interface PartRun {
  status: PartStatus;
  kind?: string;
  /** milliseconds after the build started */
  startMs?: number;
  seconds?: number;
  /** plan reasons (why it was built) */
  reason?: string;
  error?: string;
  log?: string;
  because?: string;
}

export interface RunRecord {
  startedAt: string;
  seconds: number;
  ok: boolean;
  exitCode: number;
  jobs: number;
  parts: Record<string, PartRun>;
}

/** A Reporter that records events and forwards them to the user's reporter. */
export class EvidenceRecorder implements Reporter {
  private t0 = Date.now();
  readonly run: RunRecord = { startedAt: new Date(this.t0).toISOString(), seconds: 0, ok: false, exitCode: 0, jobs: 1, parts: {} };
  constructor(private inner: Reporter) {}

  event(e: BuildEvent): void {
    const now = Date.now() - this.t0;
    const p = this.run.parts;
    switch (e.type) {
      case 'start':
        this.run.jobs = e.jobs;
        break;
      case 'part-start':
        p[e.part] = { status: 'not-run', kind: e.kind, startMs: now, reason: e.reason };
        break;
      case 'part-cached':
        p[e.part] = { status: e.relinked ? 'restored' : 'cached', kind: e.kind, startMs: now, seconds: 0 };
        break;
      case 'part-done':
        p[e.part] = { ...p[e.part], status: 'built', kind: e.kind, seconds: e.seconds, startMs: p[e.part]?.startMs ?? Math.max(0, now - e.seconds * 1000) };
        break;
      case 'part-failed':
        p[e.part] = { ...p[e.part], status: 'failed', kind: e.kind, seconds: e.seconds, error: e.error, log: e.log, startMs: p[e.part]?.startMs ?? Math.max(0, now - e.seconds * 1000) };
        break;
      case 'part-skipped':
        p[e.part] = { status: 'skipped', because: e.because, startMs: now, seconds: 0 };
        break;
      case 'end':
        this.run.ok = e.ok;
        this.run.seconds = e.seconds;
        break;
    }
    this.inner.event(e);
  }

  close(): void {
    this.inner.close();
  }
}
