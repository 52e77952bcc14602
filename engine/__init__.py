"""The workflow engine core: pure Python, no I/O.

Definition model and validation, conditions, templating, routing, and the
execution state machine ("given this state and this step result, what happens
next"). Nothing here touches the network, the database, the clock or a random
source: time (``now``), ids and randomness (``rng``) are passed in, and the
outside world is reached only through the ports in ``engine.port``. Imports are
limited to the standard library, Jinja2's sandbox and croniter (enforced by
import-linter, see setup.cfg).
"""
