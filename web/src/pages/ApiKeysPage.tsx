import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import type { ApiKey, ApiKeyCreated, ApiKeyPage } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ConfirmDialog, Modal } from "../components/Dialogs";
import { EmptyState, ErrorState, InlineError, PageHeader, Pagination, StatusBadge, TableSkeleton, Tag, Time } from "../components/ui";

function keyState(key: ApiKey): string {
  if (key.revoked_at) return "revoked";
  if (key.expires_at && new Date(key.expires_at).getTime() < Date.now()) return "expired";
  return "active";
}

export function ApiKeysPage() {
  const { me, can } = useAuth();
  const queryClient = useQueryClient();
  const [page, setPage] = useState(1);
  const [name, setName] = useState("");
  const [days, setDays] = useState("90");
  const [allScopes, setAllScopes] = useState(true);
  const [scopes, setScopes] = useState<string[]>([]);
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [copied, setCopied] = useState(false);
  const keys = useQuery({
    queryKey: ["api-keys", page],
    queryFn: () => api.get<ApiKeyPage>("/auth/api-keys", { page, page_size: 20 }),
  });
  const create = useMutation({
    mutationFn: () =>
      api.post<ApiKeyCreated>("/auth/api-keys", {
        name: name.trim(),
        scopes: allScopes ? undefined : scopes,
        expires_in_days: days ? Number(days) : undefined,
      }),
    onSuccess: (key) => {
      setCreated(key);
      setCopied(false);
      setName("");
      queryClient.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });

  return (
    <>
      <PageHeader title="API keys" description="Keys for services calling the API with X-API-Key, scoped to this organization." />
      {can("apikey:create") && (
        <section className="card" aria-labelledby="new-key">
          <h2 id="new-key">Create a key</h2>
          <form
            onSubmit={(event) => {
              event.preventDefault();
              create.mutate();
            }}
          >
            <div className="field-row">
              <div className="field">
                <label htmlFor="key-name">Name</label>
                <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} placeholder="e.g. checkout-service" />
              </div>
              <div className="field">
                <label htmlFor="key-days">Expires after (days)</label>
                <input id="key-days" type="number" min={1} value={days} onChange={(e) => setDays(e.target.value)} placeholder="never" />
              </div>
            </div>
            <fieldset className="scopes">
              <legend>Permissions</legend>
              <label className="checkbox">
                <input type="checkbox" checked={allScopes} onChange={(e) => setAllScopes(e.target.checked)} /> All of mine
              </label>
              {!allScopes && (
                <div className="scope-grid">
                  {(me?.permissions ?? []).map((permission) => (
                    <label key={permission} className="checkbox small">
                      <input
                        type="checkbox"
                        checked={scopes.includes(permission)}
                        onChange={(e) =>
                          setScopes((s) => (e.target.checked ? [...s, permission] : s.filter((p) => p !== permission)))
                        }
                      />{" "}
                      {permission}
                    </label>
                  ))}
                </div>
              )}
            </fieldset>
            <InlineError error={create.error} />
            <button type="submit" className="btn btn-primary" disabled={create.isPending || !name.trim() || (!allScopes && !scopes.length)}>
              Create key
            </button>
          </form>
        </section>
      )}

      <section className="card" aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        {keys.isPending ? (
          <TableSkeleton rows={3} columns={6} />
        ) : keys.isError ? (
          <ErrorState error={keys.error} onRetry={() => keys.refetch()} />
        ) : keys.data.api_keys.length === 0 ? (
          <EmptyState title="No API keys yet" />
        ) : (
          <>
            <div className="table-wrap">
              <table className="table" aria-label="API keys">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Prefix</th>
                    <th>Permissions</th>
                    <th>State</th>
                    <th>Last used</th>
                    <th>Expires</th>
                    <th>
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {keys.data.api_keys.map((key) => {
                    const state = keyState(key);
                    return (
                      <tr key={key.id}>
                        <td>
                          <strong>{key.name}</strong>
                          <div className="muted small">
                            created <Time value={key.created_at} />
                          </div>
                        </td>
                        <td className="mono">{key.key_prefix}…</td>
                        <td className="small">
                          {key.scopes.length > 4 ? (
                            <span title={key.scopes.join(", ")}>{key.scopes.length} permissions</span>
                          ) : (
                            key.scopes.map((s) => <Tag key={s}>{s}</Tag>)
                          )}
                        </td>
                        <td>
                          <StatusBadge status={state === "active" ? "enabled" : state === "revoked" ? "failed" : "expired"} label={state} />
                        </td>
                        <td>
                          <Time value={key.last_used_at} />
                        </td>
                        <td>{key.expires_at ? <Time value={key.expires_at} /> : <span className="muted">never</span>}</td>
                        <td className="actions-cell">
                          {state === "active" && can("apikey:revoke") && (
                            <button type="button" className="btn btn-small btn-danger-outline" onClick={() => setRevoking(key)}>
                              Revoke
                            </button>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
            <Pagination page={page} pageSize={keys.data.page_size} total={keys.data.total} onPage={setPage} />
          </>
        )}
      </section>

      <Modal
        open={created !== null}
        onOpenChange={(open) => !open && setCreated(null)}
        title="Your new API key"
        description="Copy it now: it is shown once and stored only as a hash."
      >
        <div className="secret">
          <code data-testid="new-api-key">{created?.api_key}</code>
          <button
            type="button"
            className="btn btn-small"
            onClick={async () => {
              try {
                await navigator.clipboard.writeText(created?.api_key ?? "");
                setCopied(true);
              } catch {
                setCopied(false);
              }
            }}
          >
            {copied ? "Copied" : "Copy"}
          </button>
        </div>
        <p className="small muted">Use it as the X-API-Key header.</p>
      </Modal>
      <ConfirmDialog
        open={revoking !== null}
        onOpenChange={(open) => !open && setRevoking(null)}
        title={`Revoke ${revoking?.name ?? "this key"}?`}
        description="Requests with this key are refused from now on."
        confirmLabel="Revoke"
        onConfirm={async () => {
          await api.del(`/auth/api-keys/${revoking!.id}`);
          await queryClient.invalidateQueries({ queryKey: ["api-keys"] });
        }}
      />
    </>
  );
}
