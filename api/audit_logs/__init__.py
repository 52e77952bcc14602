"""The audit log of the caller's organization, read-only."""
