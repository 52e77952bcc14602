"""Identity: registration, sign-in sessions, tokens, passwords and who is calling."""
