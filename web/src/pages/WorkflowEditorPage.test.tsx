import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkflowEditorPage } from "./WorkflowEditorPage";

// The graph itself is covered by graph.test.ts; here we only check what the editor hands it.
vi.mock("../components/WorkflowGraph", () => ({
  WorkflowGraph: ({ overlay }: { overlay?: { errors?: Record<string, string[]> } }) => (
    <pre data-testid="graph-errors">{JSON.stringify(overlay?.errors ?? {})}</pre>
  ),
}));

const doc = {
  workflow_id: "orders",
  version: "1.0.0",
  name: "Orders",
  definition: {
    trigger: { type: "event", event: "order.created" },
    steps: [
      { id: "check_total", type: "condition", condition: { field: "order.total", operator: "gte", value: 1 }, on_true: "manager_approval" },
      { id: "manager_approval", type: "action", action: { type: "require_approval" }, next: "recrod" },
    ],
  },
};

function jsonResponse(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

describe("WorkflowEditorPage", () => {
  let fetchMock: ReturnType<typeof vi.fn>;

  beforeEach(() => {
    fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (url === "/api/v1/workflows/validate") {
        const body = JSON.parse(String(init?.body));
        if (body.definition.steps[1].next === "recrod") {
          return jsonResponse(422, {
            code: 422,
            status: "Unprocessable Entity",
            message: "The workflow definition is invalid",
            errors: { "definition.steps[1].next": ["unknown step 'recrod'"], name: ["must be at most 200 characters"] },
          });
        }
        return jsonResponse(200, { valid: true, definition: body });
      }
      return jsonResponse(404, { code: 404, status: "Not Found", message: "nope" });
    });
    vi.stubGlobal("fetch", fetchMock);
  });

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  function renderEditor() {
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    return render(
      <QueryClientProvider client={client}>
        <MemoryRouter initialEntries={["/workflows/new"]}>
          <Routes>
            <Route path="/workflows/new" element={<WorkflowEditorPage />} />
          </Routes>
        </MemoryRouter>
      </QueryClientProvider>,
    );
  }

  it("pins the API's 422 errors to the step, the field and the line", async () => {
    renderEditor();
    const editor = screen.getByLabelText("Workflow JSON") as HTMLTextAreaElement;
    const text = JSON.stringify(doc, null, 2);
    fireEvent.change(editor, { target: { value: text } });

    const problem = await screen.findByRole("button", { name: /Step manager_approval › next/ }, { timeout: 3000 });
    expect(problem).toHaveTextContent("unknown step 'recrod'");
    const line = text.split("\n").findIndex((l) => l.includes('"next": "recrod"')) + 1;
    expect(problem).toHaveTextContent(`definition.steps[1].next · line ${line}`);
    expect(screen.getByRole("button", { name: /Workflow › name/ })).toHaveTextContent("must be at most 200 characters");
    expect(screen.getByRole("status")).toHaveTextContent("2 problems");

    // The graph gets the messages by step id; the gutter marks the line.
    expect(JSON.parse(screen.getByTestId("graph-errors").textContent!)).toEqual({
      manager_approval: ["next: unknown step 'recrod'"],
    });
    expect(document.querySelectorAll(".gutter-line.has-error")).toHaveLength(2);

    // Clicking the problem selects the offending member in the text.
    fireEvent.click(problem);
    expect(editor.value.slice(editor.selectionStart, editor.selectionEnd)).toBe('"next": "recrod"');
    expect(document.activeElement).toBe(editor);

    const sent = JSON.parse(String(fetchMock.mock.calls.at(-1)![1]!.body));
    expect(sent.definition.steps[1].next).toBe("recrod");
  });

  it("clears the problems once the definition is fixed", async () => {
    renderEditor();
    const editor = screen.getByLabelText("Workflow JSON");
    fireEvent.change(editor, { target: { value: JSON.stringify(doc, null, 2) } });
    await screen.findByRole("button", { name: /Step manager_approval › next/ }, { timeout: 3000 });
    const fixed = structuredClone(doc);
    fixed.definition.steps[1].next = "check_total";
    fireEvent.change(editor, { target: { value: JSON.stringify(fixed, null, 2) } });
    await waitFor(() => expect(screen.getByTestId("validation-ok")).toBeInTheDocument(), { timeout: 3000 });
    expect(screen.queryByRole("button", { name: /Step manager_approval/ })).toBeNull();
  });

  it("reports a JSON syntax error with its line without calling the API", async () => {
    renderEditor();
    await waitFor(() => expect(fetchMock).toHaveBeenCalled(), { timeout: 3000 }); // the starter is validated
    const calls = fetchMock.mock.calls.length;
    fireEvent.change(screen.getByLabelText("Workflow JSON"), { target: { value: '{\n  "name": "x",\n}' } });
    expect(await screen.findByRole("button", { name: /JSON/ })).toHaveTextContent("at line 3");
    await act(() => new Promise((resolve) => setTimeout(resolve, 800)));
    expect(fetchMock.mock.calls.length).toBe(calls);
  });
});
