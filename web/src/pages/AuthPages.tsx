import { useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import { ApiError, errorMessage } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { flattenErrors } from "../lib/definitionErrors";

function useAfterSignIn() {
  const location = useLocation();
  const navigate = useNavigate();
  const from = (location.state as { from?: string } | null)?.from;
  return () => navigate(from && !from.startsWith("/sign-in") ? from : "/workflows", { replace: true });
}

function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError) || !error.errors) return {};
  const out: Record<string, string> = {};
  for (const { path, message } of flattenErrors(error.errors)) out[path] ??= message;
  return out;
}

export function SignInPage() {
  const { signIn } = useAuth();
  const done = useAfterSignIn();
  const location = useLocation();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const expired = (location.state as { expired?: boolean } | null)?.expired;

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username.trim(), password);
      done();
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="auth-page">
      <form className="auth-card" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in</h1>
        <p className="muted">Intelligent Workflows console</p>
        {expired && <p className="notice">Your session ended. Sign in again to continue.</p>}
        <div className="field">
          <label htmlFor="username">Username or email</label>
          <input
            id="username"
            autoComplete="username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            required
            autoFocus
          />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </div>
        {error && (
          <p className="inline-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p className="muted small">
          No account? <Link to="/register">Create one</Link> — you get your own organization.
        </p>
      </form>
    </div>
  );
}

export function RegisterPage() {
  const { register } = useAuth();
  const done = useAfterSignIn();
  const [form, setForm] = useState({ username: "", email: "", password: "", first_name: "", last_name: "" });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const errors = fieldErrors(error);
  const set = (key: keyof typeof form) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [key]: e.target.value }));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await register({ ...form, username: form.username.trim(), email: form.email.trim() });
      done();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }

  const input = (key: keyof typeof form, label: string, props: Record<string, unknown> = {}) => (
    <div className={`field${errors[key] ? " has-error" : ""}`}>
      <label htmlFor={`reg-${key}`}>{label}</label>
      <input
        id={`reg-${key}`}
        value={form[key]}
        onChange={set(key)}
        aria-invalid={!!errors[key]}
        aria-describedby={errors[key] ? `reg-${key}-error` : undefined}
        {...props}
      />
      {errors[key] && (
        <span className="field-error" id={`reg-${key}-error`}>
          {errors[key]}
        </span>
      )}
    </div>
  );

  return (
    <div className="auth-page">
      <form className="auth-card" onSubmit={submit} aria-labelledby="register-title">
        <h1 id="register-title">Create an account</h1>
        <p className="muted">You become the admin of a new organization and can start at once.</p>
        {input("username", "Username", { autoComplete: "username", required: true, autoFocus: true })}
        {input("email", "Email", { type: "email", autoComplete: "email", required: true })}
        {input("password", "Password", { type: "password", autoComplete: "new-password", required: true, minLength: 8 })}
        <div className="field-row">
          {input("first_name", "First name (optional)", { autoComplete: "given-name" })}
          {input("last_name", "Last name (optional)", { autoComplete: "family-name" })}
        </div>
        {error !== null && !Object.keys(errors).length && (
          <p className="inline-error" role="alert">
            {errorMessage(error)}
          </p>
        )}
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
        <p className="muted small">
          Already registered? <Link to="/sign-in">Sign in</Link>
        </p>
      </form>
    </div>
  );
}
