"""aqaa_ref.inference.generation: per-condition summaries and the on-disk score memo (tiny cached stages)."""
import pytest
import torch

import aqaa_ref.inference.generation as generate
from aqaa_ref.data import strided
from aqaa_ref.inference.generation import AnswerScore, by_condition, score_memoised, summarize, weights_key
from aqaa_ref.training.recipe import Assets, Recipe, run_stage


class _Item:
    def __init__(self, condition):
        self.condition = condition


def test_by_condition_summarises_all_and_each_condition():
    items = [_Item("seen"), _Item("unseen_voice"), _Item("seen")]
    scores = [AnswerScore("a", "x", True, 1.0, True, True), AnswerScore("b", "y", False, 0.5, True, True),
              AnswerScore("c", "z", False, 0.0, False, False)]
    res = by_condition(scores, items)
    assert list(res) == ["all", "seen", "unseen_voice"]
    assert res["all"] == summarize(scores)
    assert res["seen"] == {"n": 2, "text_accuracy": 0.5, "audio_token_accuracy": 0.5, "well_formed": 0.5, "ended": 0.5}
    assert res["unseen_voice"]["text_accuracy"] == 0.0 and res["unseen_voice"]["n"] == 1


@pytest.fixture(scope="module")
def assets():
    a = Assets(Recipe.from_preset("tiny"), progress=False)   # the shared cached tiny corpus and stages
    for stage in ("pretrain", "sft1"):
        run_stage(stage, a, progress=False)                  # served from the cache when done
    return a


def test_score_memoised_reads_its_file_the_second_time(assets, tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "cache_dir", lambda: tmp_path)
    model, items = assets.load_stage("sft1"), strided(assets.corpus.split("test"), 2)
    assert len(items) == 2
    first = score_memoised(model, assets.builder, items)
    files = list((tmp_path / "notebook_scores").glob("*.json"))
    assert len(files) == 1 and [s.item_id for s in first] == [it.id for it in items]

    def no_generation(*args, **kwargs):
        raise AssertionError("generated although the memo exists")

    monkeypatch.setattr(generate, "answer_items", no_generation)
    assert score_memoised(model, assets.builder, items) == first            # read back from the file
    with pytest.raises(AssertionError, match="generated"):
        score_memoised(model, assets.builder, items, memo=False)            # memo=False always generates
    with pytest.raises(AssertionError, match="generated"):
        score_memoised(model, assets.builder, items[:1])                    # other items: another key


def test_weights_key_follows_the_weights(assets):
    a, b = assets.load_stage("sft1"), assets.load_stage("sft1")
    assert weights_key(a) == weights_key(b) and len(weights_key(a)) == 16
    with torch.no_grad():
        b.model.norm.weight[0] += 1.0
    assert weights_key(a) != weights_key(b)


def test_generation_never_closes_an_empty_first_audio_span():
    """A spoken answer's first span holds at least one group, even where the model's
    preferred token after <audio_start> is <audio_end> (checking still accepts the builder's
    empty span for an answer without audio); later empty spans, the rounds after the audio
    ran out, stay legal."""
    from aqaa_ref.formats.constrained import END, LING, START, TEXT, FormatSchedule
    from aqaa_ref.formats.answer_format import FORMATS

    fmt = FORMATS["ratio_10_15"]
    gen, check = FormatSchedule(fmt, nonempty_spans=True), FormatSchedule(fmt)
    for s in (gen, check):
        s.step(TEXT)
        s.step(START)
    assert END not in gen.allowed() and gen.allowed() == {LING}
    assert END in check.allowed()
    for kind in ("linguistic", "linguistic", "semantic", "semantic", "semantic"):
        gen.step(kind)
    assert END in gen.allowed()
    gen.step(END)                          # a short span: the audio ran out; the text goes on
    gen.step(TEXT)
    gen.step(START)
    assert END in gen.allowed()            # an empty span after the audio is over is well formed
