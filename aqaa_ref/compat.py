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

The other helpers below wrap the few private pieces of accelerate, torch and ctypes the
project relies on, each with a clear error if the piece is gone.
"""
from __future__ import annotations

from dataclasses import fields
from functools import cache as _memo


@_memo
def cache_field(output_cls=None) -> str:
    """The name of the KV-cache field of a transformers output class (default
    ``CausalLMOutputWithPast``): "cache" on transformers >= 5.24, "past_key_values" before."""
    import transformers

    if output_cls is None:
        from transformers.modeling_outputs import CausalLMOutputWithPast as output_cls
    names = {f.name for f in fields(output_cls)}
    for name in ("cache", "past_key_values"):
        if name in names:
            return name
    raise ImportError(f"transformers {transformers.__version__}: {output_cls.__name__} has neither a "
                      f"'cache' nor a 'past_key_values' field; aqaa_ref.compat needs updating")


def pick_cache(cache=None, past_key_values=None):
    """The KV cache a forward was given, under either name (passing both is an error)."""
    if cache is not None and past_key_values is not None and cache is not past_key_values:
        raise ValueError("pass the KV cache as cache=... or past_key_values=..., not both")
    return cache if cache is not None else past_key_values


def with_cache(output_cls, cache, **values):
    """``output_cls(**values)`` with the KV cache stored under this transformers' field name."""
    return output_cls(**values, **{cache_field(output_cls): cache})


def output_cache(output):
    """The KV cache held by a model output, whichever transformers made it."""
    return getattr(output, cache_field(type(output)))


# --------------------------------------------------------------------------- accelerate
# accelerate has no public switch for "FSDP on CPU processes" (it falls back to DDP there),
# nor a public getter for the model it wrapped in ``prepare``. The launch example
# (aqaa_ref.scaling.launch) needs both to show FSDP sharding on a laptop; these two helpers are
# the only code that touches accelerate's private state.

def force_fsdp_state(acc, plugin) -> None:
    """Switch accelerate's singleton state of ``acc`` to FSDP with ``plugin``.

    AcceleratorState re-reads PartialState's ``distributed_type`` from the shared (Borg)
    dict whenever it is re-instantiated, so that copy is set too."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    shared = getattr(PartialState, "_shared_state", None)
    if not isinstance(shared, dict):
        raise RuntimeError("accelerate's PartialState._shared_state is gone; aqaa_ref.compat."
                           "force_fsdp_state needs updating for this accelerate release")
    acc.state.fsdp_plugin = plugin
    acc.state.distributed_type = DistributedType.FSDP
    shared["distributed_type"] = DistributedType.FSDP


def prepared_model(acc, fallback):
    """The last model ``acc.prepare`` wrapped (FSDP / DDP), or ``fallback`` if none."""
    models = getattr(acc, "_models", None)
    if models is None:
        raise RuntimeError("accelerate's Accelerator._models is gone; aqaa_ref.compat."
                           "prepared_model needs updating for this accelerate release")
    return models[-1] if models else fallback


# --------------------------------------------------------------------------- torch.distributed
def fake_store():
    """A store for torch's "fake" process-group backend (collectives are no-ops): lets one
    process pretend to be rank ``r`` of ``N`` to count FSDP shards without N processes.
    torch ships it only under ``torch.testing._internal``."""
    try:
        from torch.testing._internal.distributed.fake_pg import FakeStore
    except ImportError as e:  # pragma: no cover - depends on the torch build
        raise RuntimeError(f"this torch build has no fake process group ({e}); "
                           "aqaa_ref.compat.fake_store needs updating") from e
    return FakeStore()


def mem_tracker():
    """torch's per-tensor memory tracker (peak bytes by kind: parameters, gradients,
    optimizer state, activations), shipped only under ``torch.distributed._tools``."""
    try:
        from torch.distributed._tools.mem_tracker import MemTracker
    except ImportError as e:  # pragma: no cover - depends on the torch build
        raise RuntimeError(f"this torch has no MemTracker ({e}); aqaa_ref.compat.mem_tracker needs updating") from e
    return MemTracker()


# --------------------------------------------------------------------------- ctypes
def unload_library(handle: int) -> None:
    """dlclose a shared library loaded with ctypes (``lib._handle``), so the next load
    starts from clean static state (libespeak-ng keeps hidden state between utterances).
    ctypes has no public unload; ``_ctypes.dlclose`` is the POSIX one."""
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is None:  # pragma: no cover - every CPython on POSIX and Windows has one
        raise RuntimeError("_ctypes has neither dlclose nor FreeLibrary")
    close(handle)
