"""aqaa_ref.tokenizer building blocks: k-means, CTC helpers, the EMA quantizer, batching."""
import math

import pytest
import torch

from aqaa_ref.tokenizer.ctc import (BLANK, UNK, PhonemeInventory, edit_distance, forced_align, greedy_decode,
                                    phoneme_error_rate, slot_labels)
from aqaa_ref.tokenizer.features import length_batches, stack_frames
from aqaa_ref.tokenizer.kmeans import assign, fit_kmeans, kmeans_plus_plus, sq_distances, usage_stats
from aqaa_ref.tokenizer.layers import ConvStack
from aqaa_ref.tokenizer.semantic import EMAQuantizer

# ----------------------------------------------------------------------------- k-means

def test_assign_matches_brute_force_argmin():
    g = torch.Generator().manual_seed(0)
    x, c = torch.randn(1000, 24, generator=g), torch.randn(37, 24, generator=g)
    brute = torch.tensor([min(range(37), key=lambda k: float(((xi - c[k]) ** 2).sum())) for xi in x])
    assert torch.equal(assign(x, c), brute)
    assert torch.equal(assign(x, c, chunk=128), brute)  # chunking changes nothing
    assert torch.allclose(sq_distances(x, c), torch.cdist(x, c) ** 2, atol=1e-3)


def test_fit_kmeans_finds_separated_clusters_deterministically():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0]])
    x = torch.cat([c + 0.5 * torch.randn(100, 2, generator=g) for c in centres])
    a, b = fit_kmeans(x, 5, iters=5, seed=3), fit_kmeans(x, 5, iters=5, seed=3)
    assert torch.equal(a, b)
    found = sorted(tuple(round(v) for v in row.tolist()) for row in a)
    assert found == sorted(tuple(int(v) for v in row.tolist()) for row in centres)
    assert sorted(torch.bincount(assign(x, a), minlength=5).tolist()) == [100] * 5


def test_kmeans_plus_plus_with_fewer_distinct_points_than_k():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]).repeat(10, 1)
    seeds = kmeans_plus_plus(x, 5, torch.Generator().manual_seed(0))
    assert seeds.shape == (5, 2) and {tuple(r.tolist()) for r in seeds} == {(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)}
    with pytest.raises(ValueError, match="at least k=50"):
        kmeans_plus_plus(x, 50, torch.Generator())


def test_usage_stats():
    u = usage_stats(torch.arange(8).repeat(5), 16)
    assert u["used"] == 8 and u["used_fraction"] == 0.5 and math.isclose(u["perplexity"], 8.0, rel_tol=1e-5)
    assert math.isclose(usage_stats(torch.zeros(10, dtype=torch.long), 4)["perplexity"], 1.0)


# ----------------------------------------------------------------------------- CTC

def test_inventory_and_greedy_decode():
    inv = PhonemeInventory.from_sequences([["t", "a"], ["a", "k"]])
    assert inv.phonemes == ("a", "k", "t") and len(inv) == 5
    assert inv.encode(["t", "a", "zz"]) == [4, 2, UNK]
    path = torch.full((7, 5), -10.0)
    for s, c in enumerate([BLANK, 4, 4, BLANK, 2, 2, 4]):
        path[s, c] = 0.0
    assert inv.decode(greedy_decode(path)) == ["t", "a", "t"]


def test_edit_distance_and_per():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance([], [1, 2]) == 2 and edit_distance([1], [1]) == 0
    assert phoneme_error_rate([[1, 2, 3], [4]], [[1, 2], [4, 5]]) == 2 / 4


def test_forced_align_finds_the_peaks_and_labels_nearest():
    target = [3, 3, 5]  # a doubled phoneme needs a blank in between
    lp = torch.full((10, 6), -8.0)
    for s in range(10):
        lp[s, BLANK] = -0.1
    for s, c in [(2, 3), (5, 3), (8, 5)]:
        lp[s, c] = 0.0
    lp = lp.log_softmax(-1)
    assert forced_align(lp, target) == [2, 5, 8]
    assert slot_labels([2, 5, 8], target, 10).tolist() == [3, 3, 3, 3, 3, 3, 3, 5, 5, 5]
    assert forced_align(lp[:2], target) is None  # 2 slots cannot hold 3 phonemes + a blank


# ----------------------------------------------------------------------------- VQ and batching

def test_ema_quantizer_updates_and_reseeds():
    torch.manual_seed(0)
    vq = EMAQuantizer(4, 2, decay=0.5)
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    vq.train()
    q, codes = vq(z)
    assert torch.allclose(q, vq.codebook[codes]) and bool(vq.initialised)
    before = vq.codebook.clone()
    for _ in range(20):
        q, codes = vq(z)
    assert torch.allclose(vq.codebook[codes], z, atol=0.1)  # each used code moved onto its points
    unused = torch.ones(4, dtype=torch.bool)
    unused[codes.unique()] = False
    assert torch.all(vq.ema_count[unused] < 0.5)  # codes nobody picks decay towards zero count: "dead"
    mask = torch.tensor([True, False, False, True])
    assert vq.reseed(mask, z) == 2
    assert all(any(torch.equal(vq.codebook[k], r) for r in z) for k in (0, 3)) and torch.all(vq.ema_count[mask] == 1)
    assert not torch.equal(before, vq.codebook)
    vq.eval()
    frozen = vq.codebook.clone()
    vq(z + 1)
    assert torch.equal(frozen, vq.codebook)  # eval mode never updates


def test_conv_stack_is_causal():
    torch.manual_seed(0)
    net = ConvStack(8, n_layers=3, kernel=5).eval()
    x = torch.randn(1, 40, 8)
    y = net(x)
    x2 = x.clone()
    x2[:, 25:] = torch.randn(1, 15, 8)
    assert torch.allclose(net(x2)[:, :25], y[:, :25]) and not torch.allclose(net(x2)[:, 25:], y[:, 25:])
    assert net.receptive_field == 13
    x3 = x.clone()
    x3[:, 10] += 1.0  # changes frame 10's outputs up to 10 + 12 only
    d = (net(x3) - y).abs().sum(-1)[0]
    assert d[10] > 0 and d[22] > 0 and d[23:].max() == 0 and d[:10].max() == 0


def test_stack_frames_and_length_batches():
    mel = torch.arange(2 * 13 * 3, dtype=torch.float).view(2, 13, 3)
    st = stack_frames(mel, 6)
    assert st.shape == (2, 2, 18) and torch.equal(st[0, 1], mel[0, 6:12].reshape(-1))
    lengths = [5, 100, 37, 64, 12, 99, 3, 50]
    batches = length_batches(lengths, max_frames=150, generator=torch.Generator().manual_seed(0))
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(max(lengths[i] for i in b) * len(b) <= 150 or len(b) == 1 for b in batches)


def test_training_the_two_tokenizers_side_by_side_gives_the_same_weights_as_one_after_the_other():
    from aqaa_ref.data import CorpusConfig, build_corpus
    from aqaa_ref.tokenizer import DualConfig, train_dual

    corpus = build_corpus(CorpusConfig.from_preset("tiny"), progress=False)
    cfg = DualConfig.from_preset("tiny")
    side, alone = train_dual(corpus, cfg, progress=False), train_dual(corpus, cfg, progress=False, concurrent=False)
    for part in ("linguistic", "semantic"):
        a, b = getattr(side, part).state_dict(), getattr(alone, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
