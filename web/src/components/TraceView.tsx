import type { Execution, StepRun } from "../api/types";
import { formatDuration } from "../lib/format";
import { JsonBlock, StatusBadge, Time } from "./ui";

export interface StepGroup {
  key: string;
  stepId: string;
  stepType: string;
  branchKey: string;
  attemptGroup: number;
  attempts: StepRun[];
  /** The latest attempt's status. */
  status: string;
}

/**
 * The trace's rows (one per attempt, in time order) grouped into one entry per
 * step run: same step, same branch, same attempt group (a manual retry starts
 * a new group, so it shows as a new entry).
 */
export function groupAttempts(steps: StepRun[]): StepGroup[] {
  const groups = new Map<string, StepGroup>();
  for (const run of steps) {
    const branchKey = run.branch_key ?? "";
    const attemptGroup = run.attempt_group ?? 1;
    const key = `${attemptGroup}|${branchKey}|${run.step_id}`;
    let group = groups.get(key);
    if (!group) {
      group = { key, stepId: run.step_id, stepType: run.step_type, branchKey, attemptGroup, attempts: [], status: run.status };
      groups.set(key, group);
    }
    group.attempts.push(run);
  }
  for (const group of groups.values()) {
    group.attempts.sort((a, b) => a.attempt - b.attempt);
    group.status = group.attempts[group.attempts.length - 1].status;
  }
  return [...groups.values()];
}

/** The latest status per step id (for colouring the graph). */
export function statusesByStep(steps: StepRun[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const group of groupAttempts(steps)) out[group.stepId] = group.status;
  return out;
}

function AttemptView({ run, open }: { run: StepRun; open: boolean }) {
  return (
    <details className="attempt" open={open} data-testid={`attempt-${run.step_id}-${run.attempt}`}>
      <summary>
        <span>Attempt {run.attempt}</span>
        <StatusBadge status={run.status} />
        <span className="muted small">
          {run.started_at ? <Time value={run.started_at} /> : "not started"}
          {run.duration_ms !== null && run.duration_ms !== undefined && ` · ${formatDuration(run.duration_ms)}`}
        </span>
        {run.due_at && run.status === "pending" && (
          <span className="muted small">
            {" "}
            · due <Time value={run.due_at} />
          </span>
        )}
      </summary>
      <div className="attempt-body">
        {run.error_message && (
          <div className="attempt-error" role="note">
            <strong>Error{run.error_code ? ` (${run.error_code})` : ""}:</strong> {run.error_message}
          </div>
        )}
        <div className="attempt-io">
          <div>
            <h4>Input</h4>
            <JsonBlock value={run.input} label={`Input of ${run.step_id} attempt ${run.attempt}`} />
          </div>
          <div>
            <h4>Output</h4>
            <JsonBlock value={run.output} label={`Output of ${run.step_id} attempt ${run.attempt}`} />
          </div>
        </div>
      </div>
    </details>
  );
}

export function TraceView({ steps, execution }: { steps: StepRun[]; execution?: Execution }) {
  const groups = groupAttempts(steps);
  const waiting = execution?.status === "waiting" || execution?.status === "paused";
  if (!groups.length) {
    return (
      <p className="muted" role="status">
        No step has run yet{execution?.status === "pending" ? " — the execution is queued" : ""}.
      </p>
    );
  }
  return (
    <ol className="timeline" aria-label="Step timeline">
      {groups.map((group, index) => {
        const last = index === groups.length - 1;
        const failedOrLast = group.status === "failed" || last;
        return (
          <li key={group.key} className="timeline-item" data-status={group.status} data-testid={`trace-step-${group.stepId}`}>
            <span className="timeline-dot" aria-hidden="true" />
            <div className="timeline-head">
              <strong className="mono">{group.stepId}</strong>
              <span className="muted small">{group.stepType}</span>
              {group.branchKey && <span className="tag" title="Runs inside a parallel or foreach step">{group.branchKey}</span>}
              {group.attemptGroup > 1 && <span className="tag">retry run {group.attemptGroup}</span>}
              <StatusBadge status={group.status} />
              {group.attempts.length > 1 && <span className="muted small">{group.attempts.length} attempts</span>}
            </div>
            {group.attempts.map((run, i) => (
              <AttemptView key={run.id} run={run} open={failedOrLast && i === group.attempts.length - 1} />
            ))}
          </li>
        );
      })}
      {waiting && execution?.current_step_id && (
        <li className="timeline-item" data-status={execution.status}>
          <span className="timeline-dot" aria-hidden="true" />
          <div className="timeline-head">
            <strong>
              {execution.status === "paused" ? "Paused" : "Waiting"} at <span className="mono">{execution.current_step_id}</span>
            </strong>
            <StatusBadge status={execution.status} />
          </div>
          <p className="muted small">
            {execution.status === "paused"
              ? "Resume the execution to continue."
              : "The execution continues when the approval is decided or the awaited event or time arrives."}
          </p>
        </li>
      )}
    </ol>
  );
}
