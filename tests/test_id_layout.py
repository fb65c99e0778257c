"""The one home of the 2:3 group, the log-mel framings and the LR schedule."""
import math

import pytest
import torch
import torchaudio

from aqaa_ref.audio import MelConfig, log_mel
from aqaa_ref.formats.id_layout import GROUP, GROUP_SIZE, IGNORE_INDEX, deinterleave_2_3, interleave_2_3, whole_groups
from aqaa_ref.lr_schedule import warmup_cosine


def test_group_constants():
    assert GROUP == (2, 3) and GROUP_SIZE == 5 and IGNORE_INDEX == -100


@pytest.mark.parametrize("nl, ns", [(0, 0), (1, 2), (2, 3), (5, 7), (8, 9), (10, 15)])
def test_interleave_lists_and_tensors_agree_and_round_trip(nl, ns):
    lin, sem = list(range(nl)), list(range(100, 100 + ns))
    G = min(nl // 2, ns // 3)
    ids = interleave_2_3(lin, sem, linguistic_offset=1000, semantic_offset=2000)
    assert len(ids) == 5 * G == 5 * whole_groups(nl, ns)
    t = interleave_2_3(torch.tensor(lin, dtype=torch.long), torch.tensor(sem, dtype=torch.long), 1000, 2000)
    assert t.tolist() == ids
    for g in range(G):                                       # L L S S S per group
        assert ids[5 * g:5 * g + 5] == [1000 + 2 * g, 1001 + 2 * g, 2100 + 3 * g, 2101 + 3 * g, 2102 + 3 * g]
    back_l, back_s = deinterleave_2_3([i for i in ids])
    assert back_l == [1000 + c for c in lin[:2 * G]] and back_s == [2000 + c for c in sem[:3 * G]]
    tl, ts = deinterleave_2_3(t)
    assert tl.tolist() == back_l and ts.tolist() == back_s


def test_single_stream_groups_are_bounded_by_the_other_stream_only():
    assert whole_groups(7, 0, group=(2, 0)) == 3 and whole_groups(0, 7, group=(0, 3)) == 2


def test_log_mel_framings():
    torch.manual_seed(0)
    cfg = MelConfig()
    wav = torch.randn(16_000 + 77)
    centre, exact, causal = (log_mel(wav, cfg=cfg, framing=f) for f in ("centre", "exact", "causal"))
    n = wav.numel() // cfg.hop_length
    assert centre.shape == (80, n + 1) and exact.shape == causal.shape == (80, n)
    assert torch.equal(exact, centre[:, :n])
    # causal by hand: zeros before the start, no centre padding, frame j ends at (j + 1) * hop
    x = torch.nn.functional.pad(wav[: n * cfg.hop_length], (cfg.n_fft - cfg.hop_length, 0))
    ref = torchaudio.transforms.MelSpectrogram(sample_rate=16_000, n_fft=400, hop_length=160, n_mels=80, f_min=0.0,
                                               f_max=8000.0, power=2.0, center=False, norm="slaney",
                                               mel_scale="slaney")(x).clamp(min=1e-5).log()
    assert torch.allclose(causal, ref)
    assert log_mel(wav[:100], cfg=cfg, framing="causal").shape == (80, 0)
    with pytest.raises(ValueError, match="framing"):
        log_mel(wav, framing="middle")


def test_warmup_cosine_by_hand():
    assert warmup_cosine(0, 100, 1.0, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 1.0, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 1.0, 10, 0.1) == pytest.approx(0.55)
    assert warmup_cosine(100, 100, 1.0, 10, 0.05) == pytest.approx(0.05)
    t = (30 - 10) / 90
    assert warmup_cosine(30, 100, 2.0, 10, 0.05) == 2.0 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))
