import { useMutation } from "@tanstack/react-query";
import { useId, useState } from "react";
import { api } from "../api/client";
import type { DryRun } from "../api/types";
import { InlineError, JsonBlock, StatusBadge } from "./ui";

function parsePayload(text: string): Record<string, unknown> {
  const value = JSON.parse(text || "{}") as unknown;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("The sample payload must be a JSON object.");
  }
  return value as Record<string, unknown>;
}

/** POST /workflows/{id}/test: the path and decisions on a sample payload, nothing performed. */
export function DryRunPanel({
  workflowRowId,
  initialPayload = "{\n  \n}",
  onResult,
}: {
  workflowRowId: string;
  initialPayload?: string;
  onResult?: (result: DryRun | null) => void;
}) {
  const id = useId();
  const [payload, setPayload] = useState(initialPayload);
  const [parseError, setParseError] = useState<string | null>(null);
  const run = useMutation({
    mutationFn: (body: Record<string, unknown>) => api.post<DryRun>(`/workflows/${workflowRowId}/test`, { payload: body }),
    onSuccess: (result) => onResult?.(result),
    onError: () => onResult?.(null),
  });
  const result = run.data;

  return (
    <div className="dry-run">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          try {
            const body = parsePayload(payload);
            setParseError(null);
            run.mutate(body);
          } catch (error) {
            setParseError((error as Error).message);
          }
        }}
      >
        <div className="field">
          <label htmlFor={id}>Sample payload (the trigger event's payload)</label>
          <textarea
            id={id}
            className="code"
            rows={8}
            spellCheck={false}
            value={payload}
            onChange={(e) => setPayload(e.target.value)}
          />
        </div>
        {parseError && (
          <p className="inline-error" role="alert">
            {parseError}
          </p>
        )}
        <InlineError error={run.error} />
        <button type="submit" className="btn btn-primary" disabled={run.isPending}>
          {run.isPending ? "Running…" : "Dry run"}
        </button>
        <span className="muted small"> Nothing is sent, stored or started.</span>
      </form>

      {result && (
        <div className="dry-run-result" aria-live="polite">
          <div className="kv">
            <span>Outcome</span>
            <span>
              <StatusBadge status={result.status} /> {result.result && <StatusBadge status={result.result} />}{" "}
              {result.message && <span className="muted">{result.message}</span>}
            </span>
          </div>
          <div className="kv">
            <span>Path taken</span>
            <ol className="path" aria-label="Path taken">
              {result.path.map((step, i) => (
                <li key={`${step}-${i}`} className="mono">
                  {step}
                </li>
              ))}
            </ol>
          </div>
          <h4>Decisions</h4>
          <ul className="plain-list">
            {result.decisions.map((decision, i) => (
              <li key={i}>
                <span className="mono">{String(decision.step_id)}</span> <span className="muted">({String(decision.type)})</span>
                {"condition" in decision && <> → condition {String(decision.condition)}</>}
                {decision.result ? <> → result {String(decision.result)}</> : null}
                {decision.next_step_id ? (
                  <>
                    {" "}
                    → next <span className="mono">{String(decision.next_step_id)}</span>
                  </>
                ) : null}
              </li>
            ))}
          </ul>
          {result.effects.length > 0 && (
            <>
              <h4>What would happen</h4>
              <ul className="plain-list">
                {result.effects.map((effect, i) => (
                  <li key={i}>
                    <strong>{String(effect.kind)}</strong> <span className="muted">({String(effect.would ?? "")})</span>{" "}
                    {String(effect.message ?? effect.reason ?? effect.resource ?? "")}
                  </li>
                ))}
              </ul>
            </>
          )}
          <details>
            <summary>Context at the end</summary>
            <JsonBlock value={result.context} />
          </details>
        </div>
      )}
    </div>
  );
}
