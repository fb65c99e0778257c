"""aqaa_ref.viz: token kinds and the drawings' shapes (Agg backend, nothing shown)."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from aqaa_ref.formats.answer_format import SpecialIds  # noqa: E402
from aqaa_ref.viz import spectrogram, display_kind, token_timeline  # noqa: E402
from aqaa_ref.formats.id_layout import AudioVocab  # noqa: E402


def test_token_kinds_and_timeline_cells():
    vocab, sp = AudioVocab(text_vocab_size=100, n_linguistic=8, n_semantic=8), SpecialIds()
    ids = [20, 21, sp.audio_start, 100, 101, 108, 109, 110, sp.audio_end, sp.eot]
    kinds = [display_kind(t, vocab, sp) for t in ids]
    assert kinds == ["text", "text", "marker", "linguistic", "linguistic", "semantic", "semantic", "semantic",
                     "marker", "special"]
    ax = token_timeline(ids * 30, vocab, sp, per_row=100)
    assert len(ax.patches) == len(ids) * 30                   # one cell per id
    assert len(ax.get_yticks()) == 3                            # 300 ids, 100 per row


def test_spectrogram_axis_spans_the_audio():
    ax = spectrogram(torch.zeros(16_000 * 2), title="two seconds")
    assert ax.images[0].get_extent()[1] == 2.0
    assert spectrogram(torch.zeros(0)).images                  # empty audio draws, does not fail


class _Chars:
    """A stand-in text tokenizer: text id i decodes to the letter chr(ord('a') + i - 20)."""

    def decode(self, ids, **kwargs):
        return "".join(chr(ord("a") + i - 20) for i in ids)


def test_draw_strips_one_patch_per_id_and_thin_mask_bars():
    from aqaa_ref.viz import MASK_COLORS, draw_strips

    vocab, sp = AudioVocab(text_vocab_size=100, n_linguistic=8, n_semantic=8), SpecialIds()
    ids = [sp.bos, 20, 21, sp.audio_start, 100, 101, 108, 109, 110, sp.audio_end, sp.eot]
    mask = [False, False, True, True, True, True, True, True, True, True, True]
    ax = draw_strips([("ids", ids), ("  labels", mask), ("again", ids[:4])], "strips", vocab, sp)
    assert len(ax.patches) == 2 * len(ids) + 4                  # one patch per position, every row
    heights = [p.get_height() for p in ax.patches]
    assert heights[:len(ids)] == [0.9] * len(ids)               # ids: full height
    assert heights[len(ids):2 * len(ids)] == [0.4] * len(ids)   # the mask: a thin bar
    bar = ax.patches[len(ids):2 * len(ids)]
    assert [matplotlib.colors.to_hex(p.get_facecolor()) for p in bar] == [MASK_COLORS[m].lower() for m in mask]
    assert bar[0].get_y() + 0.4 < ax.patches[0].get_y()       # the bar lies under its ids row
    assert [t.get_text() for t in ax.texts[:4]] == ["s", "20", "21", "as"]   # ids written (width <= 100)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ids", "  labels", "again"]
    wide = draw_strips([("ids", [20] * 101)], "wide", vocab, sp)
    assert len(wide.patches) == 101 and not wide.texts          # too wide: no numbers on the patches


def test_pretty_collapses_audio_runs():
    from aqaa_ref.viz import pretty

    vocab, sp, tok = AudioVocab(text_vocab_size=100, n_linguistic=8, n_semantic=8), SpecialIds(), _Chars()
    ids = [sp.bos, 20, 21, sp.audio_start, 100, 101, 108, 109, 110, sp.audio_end, 22, sp.eot]
    assert pretty(ids, tok, vocab, sp) == "[s] 'ab' [as] <5 audio: 2 L + 3 S> [ae] 'c' [EOT]"
    assert pretty([20, 100, 108, 109, 21], tok, vocab, sp) == "'a' <3 audio: 1 L + 2 S> 'b'"   # no markers
    assert pretty([20] * 10, tok, vocab, sp, max_text=4) == "'aaa"                          # text cut


def test_waterfall_plot_draws_each_stage_as_its_cumulative_share():
    from aqaa_ref.evaluation.waterfall import CEILINGS, STAGES
    from aqaa_ref.viz import waterfall_plot

    def row(cond, u, t, h):
        return dict(condition=cond, understood=u, tokens_right=t, heard_right=h, **{c: 0.5 for c in CEILINGS})
    rows = [row("seen", 1, 1, 1), row("seen", 1, 0, 1), row("unseen_voice", 1, 1, 0), row("unseen_voice", 0, 1, 1)]
    ax = waterfall_plot(rows)
    bars = [p.get_height() for p in ax.patches]
    assert len(bars) == len(STAGES) * 3                             # seen, unseen_voice, all
    # bars go stage by stage: understood for each group, then tokens_right, then heard_right
    assert bars == [1.0, 0.5, 0.75, 0.5, 0.5, 0.5, 0.5, 0.0, 0.25]
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["seen", "unseen", "all"]


def test_roadmap_marks_one_notebook_and_fades_the_done_ones():
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.patches import FancyBboxPatch

    from aqaa_ref.viz import roadmap

    ax = roadmap(4)
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 11
    outlined = [i for i, b in enumerate(boxes) if b.get_linewidth() > 2]
    assert outlined == [4]
    alphas = [b.get_alpha() for b in boxes]
    assert alphas[4] == 1.0 and alphas[3] > alphas[5]       # done ones fainter than this, stronger than to-do
    assert "04" in ax.get_title(loc="left")
    with pytest.raises(ValueError, match="not 11"):
        roadmap(11)
