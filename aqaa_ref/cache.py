"""Where generated things live, how they are keyed, and how they are written safely.

Corpora, trained tokenizers and checkpoints are cached under :func:`cache_dir`
(``$AQAA_CACHE`` or ``.cache/`` at the repository root), in folders keyed by a hash of
the config that made them: change the config and you get a new folder; keep it and the
result is reused. Every file is written to a temporary name and renamed into place, so
an interrupted run never leaves a half-written file under a name a later run trusts.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

#: Bump when a change to the code makes old cached results wrong.
CODE_VERSION = 1


def cache_dir() -> Path:
    """The cache root: ``$AQAA_CACHE`` if set, else ``<repo>/.cache``."""
    env = os.environ.get("AQAA_CACHE")
    root = Path(env) if env else Path(__file__).resolve().parent.parent / ".cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _jsonable(obj):
    """Dataclasses, dicts, lists and sets -> plain JSON values. A dataclass's fields named in its
    ``__key_defaults__`` (fields added after results were cached) are left out while they hold
    the value that reproduces the earlier behaviour, so adding them changed no cache key."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        later = getattr(obj, "__key_defaults__", {})
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.name in later and getattr(obj, f.name) == later[f.name])}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (frozenset, set)):
        return sorted(_jsonable(v) for v in obj)
    return obj


def config_hash(*objs, length: int = 12) -> str:
    """A short stable hash of dataclasses / dicts / lists (plus :data:`CODE_VERSION`)."""
    blob = json.dumps([CODE_VERSION, *[_jsonable(o) for o in objs]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode()).hexdigest()[:length]


def atomic_write_bytes(path, data: bytes, durable: bool = True) -> Path:
    """Write to a temporary name, then rename into place (readers never see a partial file).

    ``durable`` also fsyncs before the rename, so the file survives a power loss; cheap
    per-clip metadata skips it (a lost file is simply recomputed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_text(path, text: str, durable: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path, obj, durable: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, ensure_ascii=False) + "\n", durable)
