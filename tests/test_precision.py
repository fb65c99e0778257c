"""aqaa_ref.precision: a config's bf16 flag becomes bf16 autocast only where it is faster (or forced)."""
import pytest
import torch

from aqaa_ref import precision


@pytest.fixture
def forced(monkeypatch):
    def force(value):
        monkeypatch.setenv("AQAA_BF16", value)
        precision.bf16_is_faster.cache_clear()
    yield force
    precision.bf16_is_faster.cache_clear()


def test_forced_on_it_autocasts_and_forced_off_it_stays_fp32(forced):
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    forced("1")
    with precision.autocast(True):
        assert (a @ b).dtype == torch.bfloat16
    with precision.autocast(False):                 # a config that asks for fp32 always gets it
        assert (a @ b).dtype == torch.float32
    assert precision.mixed_precision("bf16") == "bf16" and precision.mixed_precision("no") == "no"
    forced("0")
    with precision.autocast(True):
        assert (a @ b).dtype == torch.float32
    if not torch.cuda.is_available():
        assert precision.mixed_precision("bf16") == "no"


def test_unforced_it_is_a_measurement_made_once(monkeypatch):
    monkeypatch.delenv("AQAA_BF16", raising=False)
    precision.bf16_is_faster.cache_clear()
    calls = []
    real = precision._best_time
    monkeypatch.setattr(precision, "_best_time", lambda fn, reps=5: calls.append(1) or real(fn, reps))
    first = precision.bf16_is_faster()
    assert isinstance(first, bool) and len(calls) == 2          # bf16 timed once, fp32 timed once
    assert precision.bf16_is_faster() is first and len(calls) == 2
    precision.bf16_is_faster.cache_clear()
