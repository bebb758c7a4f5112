/** What `plan` says of one part (its own module: the remote cache and the farm use it without importing the build loop). */
export type PlanStatus = 'up-to-date' | 'restore' | 'build';

export interface PlanEntry {
  part: string;
  kind: string;
  status: PlanStatus;
  /** human reasons, e.g. "option 'url' changed" */
  reasons: string[];
  /** restore from the remote cache (src/remote), with the reasons to build if that fails */
  remote?: { buildReasons: string[] };
}

