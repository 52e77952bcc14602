import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ShadowReport } from "../api/types";
import { ShadowRunPanel } from "./ShadowRunPanel";

const candidate = { workflow_id: "order-triage", version: "2.0.0", definition: { trigger: {}, steps: [] } };

const completed: ShadowReport = {
  id: "r1",
  workflow_id: "order-triage",
  workflow_row_id: "w1",
  status: "completed",
  selection: {},
  summary: {
    events_replayed: 6,
    same_result: 4,
    different_result: 2,
    differences: 2,
    unresolved: 2,
    by_change: [{ change: "allowed → waiting", count: 2 }],
    steps_newly_reached: [{ step_id: "manager_review", count: 2 }],
    steps_no_longer_reached: [{ step_id: "accept", count: 2 }],
  },
  created_at: "2026-12-06T16:00:00Z",
  differences: [
    {
      event_id: "e-600",
      event_type: "order.placed",
      received_at: "2026-12-06T15:00:00Z",
      recorded_execution_id: "x-600",
      recorded_version: "1.0.0",
      from: "allowed",
      to: "waiting",
      path_from: ["check_total", "accept"],
      path_to: ["check_total", "manager_review"],
      newly_reached: ["manager_review"],
      no_longer_reached: ["accept"],
      decisions_changed: [{ step_id: "check_total", from: false, to: true }],
      approvals_from: [],
      approvals_to: ["manager_review"],
      unresolved: { kind: "approval", step_id: "manager_review" },
      would: [{ kind: "approval", would: "request" }],
    },
  ],
  total: 1,
  page: 1,
  page_size: 20,
};

function jsonResponse(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

describe("ShadowRunPanel", () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  let answers: { post: [number, ShadowReport]; get: ShadowReport };

  beforeEach(() => {
    answers = { post: [200, completed], get: completed };
    fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (url === "/api/v1/workflows/w1/shadow" && init?.method === "POST") return jsonResponse(...answers.post);
      if (url.startsWith("/api/v1/workflows/w1/shadow/r1")) return jsonResponse(200, answers.get);
      return jsonResponse(404, { code: 404, status: "Not Found", message: "nope" });
    });
    vi.stubGlobal("fetch", fetchMock);
  });

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  function renderPanel(doc: unknown = candidate) {
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    return render(
      <QueryClientProvider client={client}>
        <ShadowRunPanel workflowRowId="w1" candidate={doc} />
      </QueryClientProvider>,
    );
  }

  it("sends the editor's document with the window and shows the summary and each difference", async () => {
    renderPanel();
    fireEvent.change(screen.getByLabelText("Recorded events of the last"), { target: { value: "24h" } });
    fireEvent.click(screen.getByRole("button", { name: "Shadow run" }));

    const table = await screen.findByRole("table", { name: "Events that differ" });
    const [, row] = within(table).getAllByRole("row");
    expect(row).toHaveTextContent("e-600");
    expect(row).toHaveTextContent("allowed → waiting");
    expect(row).toHaveTextContent("check_total › accept");
    expect(row).toHaveTextContent("check_total › manager_review");
    expect(row).toHaveTextContent("approval at manager_review");
    expect(row).toHaveTextContent("check_total: false → true");
    const summary = screen.getByLabelText("Shadow run summary");
    expect(summary).toHaveTextContent("Events replayed6");
    expect(summary).toHaveTextContent("Different result2");
    expect(screen.getByLabelText("Results that change")).toHaveTextContent("allowed → waiting × 2");
    expect(screen.getByLabelText("Steps newly reached")).toHaveTextContent("manager_review × 2");

    const [, init] = fetchMock.mock.calls.find(([url]) => url === "/api/v1/workflows/w1/shadow")!;
    const body = JSON.parse(String(init.body));
    expect(body.candidate).toEqual(candidate);
    const since = Date.parse(body.since);
    expect(Date.now() - since).toBeGreaterThan(86_400_000 - 60_000);
    expect(Date.now() - since).toBeLessThan(86_400_000 + 60_000);
  });

  it("polls a report a worker runs until it completes", async () => {
    answers.post = [202, { ...completed, status: "pending", summary: null, differences: [], total: 0 }];
    renderPanel();
    fireEvent.click(screen.getByRole("button", { name: "Shadow run" }));

    expect(await screen.findByText(/A worker is replaying the events/)).toBeInTheDocument();
    expect(await screen.findByRole("table", { name: "Events that differ" }, { timeout: 5000 })).toBeInTheDocument();
    expect(fetchMock.mock.calls.some(([url]) => String(url).startsWith("/api/v1/workflows/w1/shadow/r1"))).toBe(true);
  });

  it("shows the API's refusal and refuses text that is not JSON", async () => {
    answers.post = [422, { code: 422, status: "Unprocessable Entity", message: "The workflow definition is invalid" } as never];
    const { unmount } = renderPanel();
    fireEvent.click(screen.getByRole("button", { name: "Shadow run" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The workflow definition is invalid");
    unmount();

    renderPanel(null);
    expect(screen.getByRole("button", { name: "Shadow run" })).toBeDisabled();
    expect(screen.getByRole("alert")).toHaveTextContent("not valid JSON");
  });
});
