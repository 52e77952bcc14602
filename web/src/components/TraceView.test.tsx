import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { describe, expect, it } from "vitest";
import type { Execution, StepRun } from "../api/types";
import { groupAttempts, statusesByStep, TraceView } from "./TraceView";

let n = 0;
function run(step_id: string, attempt: number, status: string, extra: Partial<StepRun> = {}): StepRun {
  n += 1;
  return {
    id: `run-${n}`,
    step_id,
    step_type: "execute",
    branch_key: "",
    status,
    attempt,
    attempt_group: 1,
    input: { step: step_id },
    output: status === "completed" ? { ok: true, step: step_id } : null,
    error_message: null,
    started_at: "2026-01-01T10:00:00Z",
    completed_at: "2026-01-01T10:00:01Z",
    duration_ms: 1000,
    ...extra,
  };
}

const steps: StepRun[] = [
  run("check_total", 1, "completed", { step_type: "condition", output: { result: true } }),
  run("charge_card", 1, "failed", { error_message: "POST https://pay.example.com answered 503", error_code: "http_5xx", output: null }),
  run("charge_card", 2, "completed", { output: { results: [{ status_code: 200 }] } }),
  run("checks", 1, "completed", { step_type: "parallel" }),
  run("fraud", 1, "completed", { step_type: "condition", branch_key: "checks/fraud" }),
  run("manager_approval", 1, "completed", { step_type: "action" }),
];

const execution: Execution = {
  id: "e1",
  workflow_id: "orders",
  workflow_row_id: "w1",
  workflow_version: "1.0.0",
  status: "waiting",
  current_step_id: "manager_approval",
};

function renderTrace(list: StepRun[], ex?: Execution) {
  return render(
    <MemoryRouter>
      <TraceView steps={list} execution={ex} />
    </MemoryRouter>,
  );
}

describe("TraceView", () => {
  it("lists one entry per step, in the order they ran", () => {
    renderTrace(steps, execution);
    const items = within(screen.getByRole("list", { name: "Step timeline" })).getAllByRole("listitem");
    const names = items.map((item) => item.querySelector("strong")?.textContent);
    expect(names).toEqual(["check_total", "charge_card", "checks", "fraud", "manager_approval", "Waiting at manager_approval"]);
  });

  it("shows every attempt of a retried step with its error, input and output", () => {
    renderTrace(steps, execution);
    const charge = screen.getByTestId("trace-step-charge_card");
    expect(charge).toHaveAttribute("data-status", "completed");
    expect(within(charge).getByText("2 attempts")).toBeInTheDocument();
    const first = screen.getByTestId("attempt-charge_card-1");
    expect(within(first).getByText(/answered 503/)).toBeInTheDocument();
    expect(within(first).getByText("Error (http_5xx):")).toBeInTheDocument();
    expect(within(first).getByLabelText("Input of charge_card attempt 1")).toHaveTextContent('"step": "charge_card"');
    const second = screen.getByTestId("attempt-charge_card-2");
    expect(within(second).getByLabelText("Output of charge_card attempt 2")).toHaveTextContent('"status_code": 200');
    expect(within(second).queryByText(/Error/)).toBeNull();
  });

  it("marks a branch of a parallel step and says where the execution waits", () => {
    renderTrace(steps, execution);
    expect(within(screen.getByTestId("trace-step-fraud")).getByText("checks/fraud")).toBeInTheDocument();
    expect(screen.getByText(/continues when the approval is decided/)).toBeInTheDocument();
  });

  it("opens the failed attempt when the execution failed there", () => {
    const failed = [run("a", 1, "completed"), run("b", 1, "failed", { error_message: "boom" })];
    renderTrace(failed, { ...execution, status: "failed", current_step_id: "b" });
    expect(screen.getByTestId("attempt-b-1")).toHaveAttribute("open");
    expect(screen.getByTestId("attempt-a-1")).not.toHaveAttribute("open");
    expect(screen.queryByText(/Waiting at/)).toBeNull();
  });

  it("says so when nothing ran yet", () => {
    renderTrace([], { ...execution, status: "pending" });
    expect(screen.getByRole("status")).toHaveTextContent("No step has run yet — the execution is queued.");
  });

  it("starts a new entry for a manual retry (a new attempt group)", () => {
    const retried = [run("b", 1, "failed"), run("b", 1, "completed", { attempt_group: 2 })];
    const groups = groupAttempts(retried);
    expect(groups.map((g) => [g.stepId, g.attemptGroup, g.status])).toEqual([
      ["b", 1, "failed"],
      ["b", 2, "completed"],
    ]);
    expect(statusesByStep(retried)).toEqual({ b: "completed" });
  });
});
