"""pytest setup shared by unit tests and nbval.

nbval resolves ``--nbval-sanitize-with`` against the current directory, so the path is
made absolute here: the suite then works from any working directory.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", "missing") is None:
        config.option.nbval_sanitize_with = str(ROOT / "tests" / "nbval_sanitize.cfg")
