"""The X client and sandbox fixtures (see tests/xfixtures.py)."""

from xfixtures import *  # noqa: F403 - pytest collects fixtures from this namespace
