import { useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, refreshSession, request, session } from "../api/client";
import type { Me, Registration, TokenPair } from "../api/types";

type Status = "loading" | "anonymous" | "signed-in";

export interface RegisterInput {
  username: string;
  email: string;
  password: string;
  first_name?: string;
  last_name?: string;
}

interface AuthValue {
  status: Status;
  me: Me | null;
  signIn(username: string, password: string): Promise<void>;
  register(input: RegisterInput): Promise<void>;
  signOut(): Promise<void>;
  switchOrganization(organizationId: string): Promise<void>;
  reloadMe(): Promise<void>;
  can(permission: string): boolean;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [status, setStatus] = useState<Status>("loading");
  const [me, setMe] = useState<Me | null>(null);

  const loadMe = useCallback(async () => {
    const current = await api.get<Me>("/auth/me");
    setMe(current);
    setStatus("signed-in");
  }, []);

  useEffect(() => {
    let cancelled = false;
    const stop = session.onSignedOut(() => {
      setMe(null);
      setStatus("anonymous");
      queryClient.clear();
    });
    (async () => {
      if (!session.refreshToken()) {
        setStatus("anonymous");
        return;
      }
      // A reload: the access token was only in memory; the tab's refresh token opens a new one.
      const outcome = await refreshSession();
      if (cancelled) return;
      if (outcome !== "ok") {
        if (outcome === "rejected") session.clear();
        setStatus("anonymous");
        return;
      }
      try {
        await loadMe();
      } catch {
        if (!cancelled) setStatus("anonymous");
      }
    })();
    return () => {
      cancelled = true;
      stop();
    };
  }, [loadMe, queryClient]);

  const signIn = useCallback(
    async (username: string, password: string) => {
      const pair = await request<TokenPair>("POST", "/auth/login", {
        body: { username, password },
        auth: false,
      });
      session.store(pair);
      queryClient.clear();
      await loadMe();
    },
    [loadMe, queryClient],
  );

  const register = useCallback(
    async (input: RegisterInput) => {
      const body: Record<string, string> = {
        username: input.username,
        email: input.email,
        password: input.password,
      };
      if (input.first_name) body.first_name = input.first_name;
      if (input.last_name) body.last_name = input.last_name;
      const registration = await request<Registration>("POST", "/auth/register", { body, auth: false });
      session.store(registration);
      queryClient.clear();
      await loadMe();
    },
    [loadMe, queryClient],
  );

  const signOut = useCallback(async () => {
    const refreshToken = session.refreshToken();
    try {
      await api.post("/auth/logout", refreshToken ? { refresh_token: refreshToken } : {});
    } catch {
      // Signing out locally matters more than telling the server.
    }
    session.clear();
    queryClient.clear();
    setMe(null);
    setStatus("anonymous");
  }, [queryClient]);

  const switchOrganization = useCallback(
    async (organizationId: string) => {
      const pair = await api.post<TokenPair>("/auth/switch-organization", {
        organization_id: organizationId,
      });
      session.store(pair);
      queryClient.clear();
      await loadMe();
    },
    [loadMe, queryClient],
  );

  const value = useMemo<AuthValue>(
    () => ({
      status,
      me,
      signIn,
      register,
      signOut,
      switchOrganization,
      reloadMe: loadMe,
      can: (permission: string) => !!me?.permissions.includes(permission),
    }),
    [status, me, signIn, register, signOut, switchOrganization, loadMe],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}
