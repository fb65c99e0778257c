"""Command-line overrides of a config: ``--set sft1.lr=1e-3 --set vocoder.steps=4000``.

A key is a dotted path of dataclass fields (or dict keys) from the root config; the value is
parsed as the type of the field's current value (int, float, bool, str, a tuple or list as
comma-separated values, None). An unknown key or a value of the wrong type is a one-line
``ValueError`` naming the key. The result is a new config (frozen dataclasses are rebuilt
with ``dataclasses.replace``), so overridden settings enter the cache keys like any other
config change.

    >>> from aqaa_ref.training.recipe import Recipe
    >>> r = apply_overrides(Recipe.from_preset("tiny"), ["sft1.lr=1e-3", "dpo_beta=0.2"])
    >>> r.sft1.lr, r.dpo_beta
    (0.001, 0.2)
"""
from __future__ import annotations

import ast
import dataclasses


def _parse(key: str, text: str, current):
    def fail(kind):
        return ValueError(f"--set {key}: expected {kind}, got {text!r}")
    if isinstance(current, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise fail("true or false")
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise fail("an integer") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise fail("a number") from None
    if isinstance(current, str):
        return text
    if isinstance(current, (tuple, list)):
        parts = [p.strip() for p in text.strip("()[] ").split(",") if p.strip()]   # "80,128" or "(80, 128)"
        kind = current[0] if current else ""
        return type(current)(_parse(key, p, kind) for p in parts)
    if current is None:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    raise ValueError(f"--set {key}: {type(current).__name__} values cannot be set from the command line")


def _set(obj, path: list[str], text: str, key: str):
    name, rest = path[0], path[1:]
    if isinstance(obj, dict):
        if name not in obj:
            raise ValueError(f"--set {key}: unknown key {name!r} (known: {', '.join(sorted(obj))})")
        current = obj[name]
        return {**obj, name: _set(current, rest, text, key) if rest else _parse(key, text, current)}
    if not dataclasses.is_dataclass(obj):
        raise ValueError(f"--set {key}: {type(obj).__name__} has no settings below it")
    # a config may name its own settings (Step1Config: not transformers' generic fields)
    own = getattr(obj, "hyperparameters", None)
    names = list(own()) if callable(own) else [f.name for f in dataclasses.fields(obj)]
    if name not in names:
        raise ValueError(f"--set {key}: {type(obj).__name__} has no setting {name!r} (known: {', '.join(names)})")
    current = getattr(obj, name)
    new = _set(current, rest, text, key) if rest else _parse(key, text, current)
    return dataclasses.replace(obj, **{name: new})


def apply_overrides(config, assignments: list[str]):
    """``config`` with each ``"dotted.key=value"`` of ``assignments`` applied, in order."""
    for item in assignments or []:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. sft1.lr=1e-3")
        config = _set(config, key.split("."), text.strip(), key)
    return config
