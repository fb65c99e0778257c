"""Where a library's interface moved between releases, the one place that knows.

transformers 5.24 renamed the KV cache argument and output field of every model from
``past_key_values`` to ``cache``: ``generate`` now calls ``model(..., cache=...)`` and reads
``outputs["cache"]``, where 5.0-5.23 passed ``past_key_values=`` and read
``outputs.past_key_values``. A model that names only one of them silently loses its cache
under the other release (every decoding step then sees a past length of 0).

Our backbone therefore takes both names (``cache`` first, the transformers name from 5.24
on; ``past_key_values`` for 5.0-5.23) and returns its cache under the field the installed
transformers' output classes define. The field is detected from the dataclass itself, not
from a version number, so a backport or a later rename is caught by ``tests/test_compat.py``.
"""
from __future__ import annotations

from dataclasses import fields

import transformers
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast


def _cache_field(cls) -> str:
    names = {f.name for f in fields(cls)}
    for name in ("cache", "past_key_values"):
        if name in names:
            return name
    raise ImportError(f"transformers {transformers.__version__}: {cls.__name__} has neither a "
                      f"'cache' nor a 'past_key_values' field; aqaa_ref.compat needs updating")


# "cache" on transformers >= 5.24, "past_key_values" before
CACHE_FIELD = _cache_field(CausalLMOutputWithPast)
if _cache_field(BaseModelOutputWithPast) != CACHE_FIELD:
    raise ImportError(f"transformers {transformers.__version__}: the base and causal-LM outputs "
                      "name their cache differently; aqaa_ref.compat needs updating")


def pick_cache(cache=None, past_key_values=None):
    """The KV cache a forward was given, under either name (passing both is an error)."""
    if cache is not None and past_key_values is not None and cache is not past_key_values:
        raise ValueError("pass the KV cache as cache=... or past_key_values=..., not both")
    return cache if cache is not None else past_key_values


def with_cache(output_cls, cache, **values):
    """``output_cls(**values)`` with the KV cache stored under this transformers' field name."""
    return output_cls(**values, **{CACHE_FIELD: cache})


def output_cache(output):
    """The KV cache held by a model output, whichever transformers made it."""
    return getattr(output, CACHE_FIELD)
