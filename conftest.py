"""pytest setup shared by unit tests and nbval.

nbval resolves ``--nbval-sanitize-with`` against the current directory, so the path is
made absolute here: the suite then works from any working directory.
"""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", "missing") is None:
        config.option.nbval_sanitize_with = str(ROOT / "tests" / "nbval_sanitize.cfg")


# property-based tests draw the same examples on every run (CI must not be flaky); run
# `HYPOTHESIS_PROFILE=explore pytest ...` to search fresh random examples locally
try:
    import os

    from hypothesis import settings

    settings.register_profile("ci", derandomize=True)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a dev dependency
    pass


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (small models: threads only add overhead), then restore."""
    from aqaa_ref.threads import torch_threads

    with torch_threads(1):
        yield
