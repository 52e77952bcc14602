"""`iwctl`: the command-line client of the Intelligent Workflows API.

It talks to the API over HTTP (httpx) and imports only the engine's pure
validator, for `iwctl validate`, which works offline.
"""
