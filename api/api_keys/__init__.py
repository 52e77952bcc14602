"""API keys: created with scopes no wider than their creator's permissions, shown once."""
