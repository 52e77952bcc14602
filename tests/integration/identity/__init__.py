"""Identity and tenancy over HTTP: auth, API keys, organizations, audit log."""
