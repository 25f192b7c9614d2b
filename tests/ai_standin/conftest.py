"""The AI stand-in fixtures (see standin_fixtures.py)."""

from standin_fixtures import *  # noqa: F403 - pytest collects fixtures from this namespace
