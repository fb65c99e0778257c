"""The lock file: the exact, tested version of every package (``requirements.lock``).

``requirements.lock`` is written by ``uv pip compile --universal`` (``./run.sh lock``): one
``name==version`` line per package of the whole resolved tree, some with an environment
marker (``numpy==2.5.5 ; python_full_version >= '3.12'``) where the tree differs between
platforms or Pythons. ``./run.sh setup`` installs exactly these lines with ``--no-deps``.

This module reads it back so the environment can be checked against it:

* :func:`locked_versions` -- {normalised name: version} for the running interpreter
  (markers evaluated here);
* :func:`drift` -- the packages whose installed version differs from the lock;
* ``python -m aqaa_ref.lockfile diff OLD NEW`` -- what a refreshed lock changes
  (printed by ``./run.sh lock``); ``python -m aqaa_ref.lockfile check`` -- drift, exit 1.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"

# the distributions whose modules aqaa_ref and its tests import (distribution names)
IMPORTED = ("torch", "torchaudio", "transformers", "tokenizers", "accelerate", "safetensors",
            "soundfile", "espeakng-loader", "numpy", "tqdm", "matplotlib", "ipywidgets",
            "packaging", "pytest", "nbval", "hypothesis")

_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?$")


def parse_lock(text: str, evaluate: bool = True) -> dict[str, str]:
    """``name==version [; marker]`` lines -> {canonical name: version}.

    With ``evaluate`` only the lines whose marker holds for this interpreter are kept (so a
    package locked twice for different Pythons yields the one that applies here)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(f"lock line is not 'name==version [; marker]': {line!r}")
        name, version, marker = m.groups()
        if evaluate and marker and not Marker(marker).evaluate():
            continue
        out[canonicalize_name(name)] = version
    return out


def locked_versions(path: str | Path = LOCK) -> dict[str, str]:
    """{canonical name: version} that the lock at ``path`` holds for this interpreter."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"lock file not found: {p}")
    return parse_lock(p.read_text())


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def drift(path: str | Path = LOCK, names=IMPORTED) -> list[str]:
    """One line per package in ``names`` whose installed version is not the locked one."""
    lock = locked_versions(path)
    problems = []
    for name in names:
        key = canonicalize_name(name)
        want, have = lock.get(key), installed_version(name)
        if want is None:
            problems.append(f"{name}: not in {Path(path).name}")
        elif have is None:
            problems.append(f"{name}: locked {want}, not installed")
        elif have.split("+")[0] != want.split("+")[0]:       # a local tag (+cu130) is a build, not a version
            problems.append(f"{name}: locked {want}, installed {have}")
    return problems


def diff(old: str, new: str) -> list[str]:
    """Lines describing how lock text ``new`` differs from ``old`` (markers not evaluated)."""
    def table(text):
        rows: dict[str, set[str]] = {}
        for raw in text.splitlines():
            m = _LINE.match(raw.strip())
            if m:
                rows.setdefault(canonicalize_name(m.group(1)), set()).add(m.group(2))
        return {k: ", ".join(sorted(v)) for k, v in rows.items()}
    a, b = table(old), table(new)
    lines = [f"  {k}: {a[k]} -> {b[k]}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
    lines += [f"  + {k} {b[k]}" for k in sorted(b.keys() - a.keys())]
    lines += [f"  - {k} {a[k]}" for k in sorted(a.keys() - b.keys())]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["diff"] and len(args) == 3:
        old = Path(args[1]).read_text() if Path(args[1]).is_file() else ""
        lines = diff(old, Path(args[2]).read_text())
        print(f"[lock] {len(lines)} change(s)" + (":" if lines else ": the lock is already the newest"))
        print("\n".join(lines)) if lines else None
        return 0
    if args[:1] == ["check"]:
        problems = drift(args[1] if len(args) > 1 else LOCK)
        for p in problems:
            print(f"drift: {p}", file=sys.stderr)
        return 1 if problems else 0
    print("usage: python -m aqaa_ref.lockfile diff OLD NEW | check [LOCK]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
