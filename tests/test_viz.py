"""aqaa_ref.viz: token kinds and the drawings' shapes (Agg backend, nothing shown)."""
import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from aqaa_ref.interleave import SpecialIds  # noqa: E402
from aqaa_ref.vocab import AudioVocab  # noqa: E402
from aqaa_ref.viz import spectrogram, token_kind, token_timeline  # noqa: E402


def test_token_kinds_and_timeline_cells():
    vocab, sp = AudioVocab(text_vocab_size=100, n_linguistic=8, n_semantic=8), SpecialIds()
    ids = [20, 21, sp.audio_start, 100, 101, 108, 109, 110, sp.audio_end, sp.eot]
    kinds = [token_kind(t, vocab, sp) for t in ids]
    assert kinds == ["text", "text", "marker", "linguistic", "linguistic", "semantic", "semantic", "semantic",
                     "marker", "special"]
    ax = token_timeline(ids * 30, vocab, sp, per_row=100)
    assert len(ax.patches) == len(ids) * 30                   # one cell per id
    assert len(ax.get_yticks()) == 3                            # 300 ids, 100 per row


def test_spectrogram_axis_spans_the_audio():
    ax = spectrogram(torch.zeros(16_000 * 2), title="two seconds")
    assert ax.images[0].get_extent()[1] == 2.0
    assert spectrogram(torch.zeros(0)).images                  # empty audio draws, does not fail
