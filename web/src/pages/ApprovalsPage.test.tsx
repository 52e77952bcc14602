import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Approval } from "../api/types";
import { ApprovalsPage } from "./ApprovalsPage";

vi.mock("../auth/AuthContext", () => ({ useAuth: () => ({ can: () => true, me: { user_id: "u1" } }) }));

// SPEC §3's approval shape (the endpoints are GET /approvals, POST /approvals/{id}/approve|reject).
const approval: Approval = {
  id: "ap-1",
  execution_id: "0e470f45-0000-0000-0000-000000000000",
  step_id: "manager_approval",
  entity_type: "order",
  entity_id: "o-1001",
  approver_role: "sales_manager",
  status: "pending",
  reason: "Order of 1000 or more",
  data: { order_total: 2500 },
  decided_by: null,
  decision_reason: null,
  requested_at: new Date(Date.now() - 60_000).toISOString(),
  decided_at: null,
  expires_at: new Date(Date.now() + 2 * 3600_000 + 5 * 60_000).toISOString(),
};

function jsonResponse(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function renderPage(path = "/approvals") {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <ApprovalsPage />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe("ApprovalsPage", () => {
  let decided = false;
  let fetchMock: ReturnType<typeof vi.fn>;
  beforeEach(() => {
    decided = false;
    fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      if (url.startsWith("/api/v1/approvals?")) {
        const approvals = decided ? [] : [approval];
        return jsonResponse(200, { approvals, total: approvals.length, page: 1, page_size: 20 });
      }
      if (url === "/api/v1/approvals/ap-1/approve" && init?.method === "POST") {
        decided = true;
        return jsonResponse(200, { ...approval, status: "approved" });
      }
      return jsonResponse(404, { code: 404, status: "Not Found", message: "nope" });
    });
    vi.stubGlobal("fetch", fetchMock);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("lists my pending approvals with a countdown and approves one with a reason", async () => {
    renderPage();
    const card = await screen.findByTestId("approval-ap-1");
    const listing = fetchMock.mock.calls.find(([url]) => String(url).startsWith("/api/v1/approvals?"))!;
    expect(listing[0]).toBe("/api/v1/approvals?mine=true&status=pending&page=1&page_size=20");
    // This server has no stream endpoint (404): the inbox polls.
    expect(screen.getByTestId("live-mode")).toHaveAttribute("data-mode", "polling");
    expect(within(card).getByText("group: sales_manager")).toBeInTheDocument();
    expect(within(card).getByText(/^2h 0[45]m \d\ds left$/)).toBeInTheDocument();
    expect(within(card).getByRole("link", { name: "0e470f45" })).toHaveAttribute("href", "/executions/0e470f45-0000-0000-0000-000000000000");

    fireEvent.click(within(card).getByRole("button", { name: "Approve" }));
    const dialog = await screen.findByRole("dialog");
    fireEvent.change(within(dialog).getByLabelText(/Reason/), { target: { value: "known customer" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Approve" }));
    await waitFor(() => expect(screen.getByText("Nothing is waiting for you")).toBeInTheDocument());
    const post = fetchMock.mock.calls.find(([url]) => url === "/api/v1/approvals/ap-1/approve")!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ reason: "known customer" });
  });

  it("re-reads the inbox when the execution stream says an execution changed", async () => {
    let push: (frame: string) => void = () => undefined;
    let listings = 0;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        if (url === "/api/v1/streams/endpoint") return jsonResponse(200, { base_url: "http://streams:8081" });
        if (url === "http://streams:8081/api/v1/executions/stream") {
          expect((init?.headers as Record<string, string>).Accept).toBe("text/event-stream");
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              push = (frame) => controller.enqueue(new TextEncoder().encode(frame));
            },
          });
          return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
        }
        if (url.startsWith("/api/v1/approvals?")) {
          listings += 1;
          const approvals = listings === 1 ? [] : [approval];
          return jsonResponse(200, { approvals, total: approvals.length, page: 1, page_size: 20 });
        }
        return jsonResponse(404, { code: 404, status: "Not Found", message: "nope" });
      }),
    );
    renderPage();
    await screen.findByText("Nothing is waiting for you");
    await waitFor(() => expect(screen.getByTestId("live-mode")).toHaveAttribute("data-mode", "live"));
    push('id: 1700000000000000\nevent: execution\ndata: {"execution_id":"0e470f45","status":"waiting","version":4}\n\n');
    expect(await screen.findByTestId("approval-ap-1")).toBeInTheDocument();
    expect(listings).toBe(2);
  });

  it("says so when the server has no approvals API", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => jsonResponse(404, { code: 404, status: "Not Found", message: "The requested URL was not found" })));
    renderPage("/approvals?scope=all");
    expect(await screen.findByRole("alert")).toHaveTextContent("The approvals API is not available on this server (404)");
  });
});
