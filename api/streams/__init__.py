"""Live execution updates over Server-Sent Events."""
