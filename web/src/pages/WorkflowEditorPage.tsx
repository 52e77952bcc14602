import * as Tabs from "@radix-ui/react-tabs";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, ApiError, errorMessage } from "../api/client";
import type { DryRun, Workflow } from "../api/types";
import { DryRunPanel } from "../components/DryRunPanel";
import { ShadowRunPanel } from "../components/ShadowRunPanel";
import { WorkflowGraph } from "../components/WorkflowGraph";
import { ErrorState, PageHeader, Skeleton } from "../components/ui";
import { describeLocation, errorsByStep, pinErrors, stepsOf, type PinnedError } from "../lib/definitionErrors";
import { checkJson, JsonSyntaxError, locate, parsePath, type Segment } from "../lib/jsonPath";
import { useDebounced } from "../lib/useDebounced";

export const STARTER_WORKFLOW = {
  workflow_id: "order_approval",
  version: "1.0.0",
  name: "Order approval",
  description: "Large orders wait for a sales manager",
  tags: ["orders"],
  definition: {
    trigger: { type: "event", event: "order.created" },
    steps: [
      {
        id: "check_total",
        type: "condition",
        condition: { field: "order.total", operator: "gte", value: 1000 },
        on_true: "manager_approval",
        on_false: "allow",
      },
      {
        id: "manager_approval",
        type: "action",
        action: { type: "require_approval", reason: "Order over 1000" },
        metadata: { approver_role: "sales_manager" },
        next: "allow",
      },
      { id: "allow", type: "action", action: { type: "allow" } },
    ],
  },
};

const LINE_HEIGHT = 20;

type Parsed = { ok: true; doc: unknown } | { ok: false; error: JsonSyntaxError | Error };

export function parseDocument(text: string): Parsed {
  try {
    checkJson(text);
    return { ok: true, doc: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

type Validation =
  | { state: "idle" }
  | { state: "checking" }
  | { state: "valid" }
  | { state: "invalid"; errors: PinnedError[]; message: string }
  | { state: "failed"; error: unknown };

function editableDocument(workflow: Workflow) {
  return {
    workflow_id: workflow.workflow_id,
    version: workflow.version,
    name: workflow.name,
    description: workflow.description ?? "",
    tags: workflow.tags,
    definition: workflow.definition,
  };
}

/** Segments to a step by id, at any depth (for jumping from the graph to the text). */
function stepSegments(doc: unknown, stepId: string): Segment[] | null {
  const base: Segment[] = (doc as { definition?: unknown })?.definition ? ["definition", "steps"] : ["steps"];
  const search = (steps: unknown[], prefix: Segment[]): Segment[] | null => {
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i] as Record<string, unknown> | null;
      if (!step || typeof step !== "object") continue;
      if (step.id === stepId) return [...prefix, i];
      for (const key of ["parallel", "foreach"]) {
        const body = (step[key] as { steps?: unknown[] } | undefined)?.steps;
        if (Array.isArray(body)) {
          const found = search(body, [...prefix, i, key, "steps"]);
          if (found) return found;
        }
      }
    }
    return null;
  };
  return search(stepsOf(doc), base);
}

export function WorkflowEditorPage() {
  const { id } = useParams();
  const existing = useQuery({
    queryKey: ["workflow", id],
    queryFn: () => api.get<Workflow>(`/workflows/${id}`),
    enabled: !!id,
  });
  if (id && existing.isPending) return <Skeleton lines={10} />;
  if (id && existing.isError) return <ErrorState error={existing.error} onRetry={() => existing.refetch()} />;
  const workflow = id ? existing.data : undefined;
  return <Editor key={workflow?.id ?? "new"} workflow={workflow} />;
}

function Editor({ workflow }: { workflow?: Workflow }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const textarea = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const [text, setText] = useState(() =>
    JSON.stringify(workflow ? editableDocument(workflow) : STARTER_WORKFLOW, null, 2),
  );
  const [validation, setValidation] = useState<Validation>({ state: "idle" });
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [dryRun, setDryRun] = useState<DryRun | null>(null);
  const [rightTab, setRightTab] = useState("preview");
  const sequence = useRef(0);

  const parsed = useMemo(() => parseDocument(text), [text]);
  const debouncedText = useDebounced(text, 600);
  const [lastGood, setLastGood] = useState<unknown>(parsed.ok ? parsed.doc : null);
  useEffect(() => {
    if (parsed.ok) setLastGood(parsed.doc);
  }, [parsed]);

  async function validate(source: string): Promise<boolean> {
    const current = parseDocument(source);
    if (!current.ok) return false;
    const mine = ++sequence.current;
    setValidation({ state: "checking" });
    try {
      await api.post("/workflows/validate", current.doc);
      if (mine === sequence.current) setValidation({ state: "valid" });
      return true;
    } catch (error) {
      if (mine !== sequence.current) return false;
      if (error instanceof ApiError && error.status === 422) {
        setValidation({ state: "invalid", errors: pinErrors(error.errors ?? {}, current.doc, source), message: error.message });
      } else {
        setValidation({ state: "failed", error });
      }
      return false;
    }
  }

  // Live validation while typing (debounced), once the text is valid JSON.
  useEffect(() => {
    if (parseDocument(debouncedText).ok) void validate(debouncedText);
  }, [debouncedText]);

  const pinned = validation.state === "invalid" ? validation.errors : [];
  // Re-pin against the current text so clicking an error lands on the right line after edits.
  const livePinned = useMemo(
    () => (parsed.ok && pinned.length ? pinned.map((p) => ({ ...p, span: locate(text, parsePath(p.path))?.span ?? p.span })) : pinned),
    [pinned, parsed, text],
  );
  const stepErrors = useMemo(() => errorsByStep(livePinned), [livePinned]);
  const errorLines = useMemo(() => {
    const lines = new Map<number, string[]>();
    for (const error of livePinned) {
      if (!error.span) continue;
      const list = lines.get(error.span.line) ?? [];
      list.push(`${describeLocation(error)}: ${error.message}`);
      lines.set(error.span.line, list);
    }
    if (!parsed.ok && parsed.error instanceof JsonSyntaxError) {
      lines.set(parsed.error.line, [parsed.error.message]);
    }
    return lines;
  }, [livePinned, parsed]);

  const lineCount = text.split("\n").length;
  const previewDefinition = useMemo(() => {
    const doc = lastGood as { definition?: unknown; trigger?: unknown; steps?: unknown } | null;
    if (!doc || typeof doc !== "object") return null;
    return (doc.definition ?? doc) as { trigger?: unknown; steps?: unknown };
  }, [lastGood]);

  function jumpTo(start: number, end: number, line: number) {
    const area = textarea.current;
    if (!area) return;
    area.focus();
    area.setSelectionRange(start, end);
    area.scrollTop = Math.max(0, (line - 4) * LINE_HEIGHT);
  }

  function jumpToStep(stepId: string) {
    if (!parsed.ok) return;
    const segments = stepSegments(parsed.doc, stepId);
    const found = segments && locate(text, segments);
    if (found) jumpTo(found.span.start, found.span.start + 1, found.span.line);
  }

  async function save() {
    if (!parsed.ok) return;
    setSaving(true);
    setSaveError(null);
    try {
      const saved = workflow
        ? await api.put<Workflow>(`/workflows/${workflow.id}`, parsed.doc)
        : await api.post<Workflow>("/workflows", parsed.doc);
      queryClient.setQueryData(["workflow", saved.id], saved);
      queryClient.invalidateQueries({ queryKey: ["workflows"] });
      queryClient.invalidateQueries({ queryKey: ["versions"] });
      navigate(`/workflows/${saved.id}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) {
        setValidation({ state: "invalid", errors: pinErrors(error.errors ?? {}, parsed.doc, text), message: error.message });
      } else {
        setSaveError(error);
      }
    } finally {
      setSaving(false);
    }
  }

  const status = !parsed.ok ? (
    <span className="validation-status invalid" role="status">
      JSON syntax error: {parsed.error.message}
    </span>
  ) : validation.state === "checking" ? (
    <span className="validation-status" role="status">
      Checking…
    </span>
  ) : validation.state === "valid" ? (
    <span className="validation-status valid" role="status" data-testid="validation-ok">
      ✓ Valid definition
    </span>
  ) : validation.state === "invalid" ? (
    <span className="validation-status invalid" role="status">
      {validation.errors.length} problem{validation.errors.length === 1 ? "" : "s"}
    </span>
  ) : validation.state === "failed" ? (
    <span className="validation-status invalid" role="status">
      Could not validate: {errorMessage(validation.error)}
    </span>
  ) : (
    <span className="validation-status" role="status" />
  );

  return (
    <>
      <PageHeader
        title={workflow ? `Edit ${workflow.name}` : "New workflow"}
        description={
          workflow ? (
            <>
              <span className="mono">{workflow.workflow_id}</span> version {workflow.version}. Running executions keep the definition
              they started with.
            </>
          ) : (
            "Write the workflow as JSON. It is checked as you type; problems are pinned to their lines and steps."
          )
        }
        actions={
          <>
            <Link className="btn" to={workflow ? `/workflows/${workflow.id}` : "/workflows"}>
              Cancel
            </Link>
            <button type="button" className="btn" onClick={() => validate(text)} disabled={!parsed.ok}>
              Validate
            </button>
            <button type="button" className="btn btn-primary" onClick={save} disabled={!parsed.ok || saving}>
              {saving ? "Saving…" : workflow ? "Save changes" : "Create workflow"}
            </button>
          </>
        }
      />
      <div className="editor-layout">
        <section className="editor-column" aria-label="Definition editor">
          <div className="editor-toolbar">
            {status}
            <button
              type="button"
              className="btn btn-small"
              disabled={!parsed.ok}
              onClick={() => parsed.ok && setText(JSON.stringify(parsed.doc, null, 2))}
            >
              Format
            </button>
          </div>
          <div className="code-editor">
            <div className="gutter" ref={gutter} aria-hidden="true">
              {Array.from({ length: lineCount }, (_, i) => {
                const messages = errorLines.get(i + 1);
                return (
                  <div key={i} className={messages ? "gutter-line has-error" : "gutter-line"} title={messages?.join("\n")}>
                    {messages ? "●" : i + 1}
                  </div>
                );
              })}
            </div>
            <textarea
              ref={textarea}
              aria-label="Workflow JSON"
              aria-invalid={!parsed.ok || validation.state === "invalid"}
              aria-describedby="problems"
              className="code-input"
              spellCheck={false}
              autoCapitalize="off"
              autoComplete="off"
              wrap="off"
              value={text}
              onChange={(e) => setText(e.target.value)}
              onScroll={(e) => {
                if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
              }}
            />
          </div>
          <div id="problems" className="problems" aria-live="polite">
            {!parsed.ok && (
              <button
                type="button"
                className="problem"
                onClick={() => {
                  const error = parsed.error;
                  if (error instanceof JsonSyntaxError) jumpTo(error.offset, error.offset + 1, error.line);
                }}
              >
                <span className="problem-where">JSON</span>
                <span className="problem-message">{parsed.error.message}</span>
              </button>
            )}
            {parsed.ok && validation.state === "invalid" && (
              <>
                <h3 className="problems-title">Problems</h3>
                <ul className="problem-list">
                  {livePinned.map((error, i) => (
                    <li key={`${error.path}-${i}`}>
                      <button
                        type="button"
                        className="problem"
                        data-path={error.path}
                        onClick={() => error.span && jumpTo(error.span.start, error.span.end, error.span.line)}
                        title={`Go to ${error.path}`}
                      >
                        <span className="problem-where">{describeLocation(error)}</span>
                        <span className="problem-message">{error.message}</span>
                        <span className="problem-path mono">
                          {error.path || "(document)"}
                          {error.span ? ` · line ${error.span.line}` : ""}
                        </span>
                      </button>
                    </li>
                  ))}
                </ul>
              </>
            )}
            {saveError !== null && (
              <p className="inline-error" role="alert">
                {errorMessage(saveError)}
              </p>
            )}
          </div>
        </section>
        <section className="preview-column" aria-label="Preview">
          <Tabs.Root value={rightTab} onValueChange={setRightTab} className="tabs">
            <Tabs.List className="tab-list" aria-label="Preview views">
              <Tabs.Trigger value="preview">Graph preview</Tabs.Trigger>
              {workflow && <Tabs.Trigger value="dry-run">Dry run</Tabs.Trigger>}
              {workflow && <Tabs.Trigger value="shadow">Shadow run</Tabs.Trigger>}
            </Tabs.List>
            <Tabs.Content value="preview" className="tab-panel">
              <WorkflowGraph
                definition={previewDefinition}
                overlay={{ errors: stepErrors }}
                onSelectStep={jumpToStep}
                height={560}
                label="Live graph preview"
              />
              <p className="muted small">
                {parsed.ok ? "Click a step to find it in the text." : "Showing the last version that parsed."}
              </p>
            </Tabs.Content>
            {workflow && (
              <Tabs.Content value="dry-run" className="tab-panel">
                <p className="muted small">Runs the saved version ({workflow.version}); save first to try your edits.</p>
                <WorkflowGraph definition={workflow.definition} overlay={{ path: dryRun?.path }} height={320} />
                <DryRunPanel workflowRowId={workflow.id} onResult={setDryRun} />
              </Tabs.Content>
            )}
            {workflow && (
              <Tabs.Content value="shadow" className="tab-panel">
                <p className="muted small">
                  Replays the recorded events through the text above (saved or not) and compares each with what the
                  executions of {workflow.workflow_id} really did.
                </p>
                <ShadowRunPanel workflowRowId={workflow.id} candidate={parsed.ok ? parsed.doc : null} />
              </Tabs.Content>
            )}
          </Tabs.Root>
        </section>
      </div>
    </>
  );
}

