import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, REFRESH_TOKEN_KEY, session } from "./client";

function jsonResponse(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

const pair = (n: number) => ({ access_token: `access-${n}`, refresh_token: `refresh-${n}`, expires_in: 900, token_type: "Bearer" });

afterEach(() => {
  vi.unstubAllGlobals();
  session.clear();
});

describe("the API client", () => {
  it("keeps the access token in memory and the refresh token in sessionStorage", () => {
    session.store(pair(1));
    expect(session.accessToken()).toBe("access-1");
    expect(sessionStorage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-1");
    expect(JSON.stringify(sessionStorage)).not.toContain("access-1");
  });

  it("refreshes once on a 401, shared by concurrent requests, and retries with the new token", async () => {
    session.store(pair(1));
    const seen: string[] = [];
    const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
      const auth = (init?.headers as Record<string, string>)?.Authorization ?? "";
      seen.push(`${url} ${auth}`);
      if (url === "/api/v1/auth/refresh") {
        expect(JSON.parse(String(init?.body))).toEqual({ refresh_token: "refresh-1" });
        return jsonResponse(200, pair(2));
      }
      return auth === "Bearer access-2" ? jsonResponse(200, { ok: url }) : jsonResponse(401, { code: 401, message: "expired" });
    });
    vi.stubGlobal("fetch", fetchMock);

    const [a, b] = await Promise.all([api.get("/workflows"), api.get("/executions")]);
    expect(a).toEqual({ ok: "/api/v1/workflows" });
    expect(b).toEqual({ ok: "/api/v1/executions" });
    expect(seen.filter((s) => s.startsWith("/api/v1/auth/refresh"))).toHaveLength(1);
    expect(session.accessToken()).toBe("access-2");
    expect(sessionStorage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-2");
  });

  it("signs out when the refresh is refused", async () => {
    session.store(pair(1));
    const signedOut = vi.fn();
    const stop = session.onSignedOut(signedOut);
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => jsonResponse(401, { code: 401, status: "Unauthorized", message: "token revoked" })),
    );
    await expect(api.get("/workflows")).rejects.toMatchObject({ status: 401 });
    expect(signedOut).toHaveBeenCalledTimes(1);
    expect(session.accessToken()).toBeNull();
    expect(sessionStorage.getItem(REFRESH_TOKEN_KEY)).toBeNull();
    stop();
  });

  it("turns the API's error shape into an ApiError with the field errors", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        jsonResponse(422, { code: 422, status: "Unprocessable Entity", message: "invalid", errors: { "steps[0].next": ["unknown"] } }),
      ),
    );
    const error = await api.post("/workflows/validate", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, message: "invalid", errors: { "steps[0].next": ["unknown"] } });
  });

  it("drops empty query parameters and repeats list ones", async () => {
    const fetchMock = vi.fn(async (_url: string) => jsonResponse(200, {}));
    vi.stubGlobal("fetch", fetchMock);
    await api.get("/workflows", { search: "", tag: ["a", "b"], enabled: true, page: undefined });
    expect(fetchMock.mock.calls[0][0]).toBe("/api/v1/workflows?tag=a&tag=b&enabled=true");
  });
});
