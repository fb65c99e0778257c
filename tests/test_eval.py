"""aqaa_ref.evaluation.judges and .scoring: the toy StepEval on the tiny corpus.

The tiny recognizer (15 training steps) hears next to nothing, so the correctness checks
swap in :class:`OracleTranscripts`: the tiny recognizer's network (the classifiers' features
still use it) with a lookup that returns the eSpeak phonemes of known corpus renderings and
nothing for any other audio. That isolates the scoring logic and the threshold's separation
of the corpus's real answer strings; the real judges' numbers are in scoring's module docstring.
"""
import math

import matplotlib
import pytest
import torch

from aqaa_ref.data import CorpusConfig, build_corpus, phoneme_tokens
from aqaa_ref.evaluation.judges import Judges, classifier_accuracy
from aqaa_ref.evaluation.scoring import (DIMENSIONS, AnswerRecord, EvalResult, calibrate_correctness, dtw_mel_l1,
                                         evaluate, judge_answer, reference_records, style_contrasts)
from aqaa_ref.metrics import bootstrap_interval, paired_bootstrap, wilson_interval
from aqaa_ref.viz import radar_plot

matplotlib.use("Agg")


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py: 1 torch thread (small models)


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(CorpusConfig.from_preset("tiny"), progress=False)


@pytest.fixture(scope="module")
def judges(corpus):
    torch.set_num_threads(1)
    return Judges.load_or_train(corpus, "tiny", progress=False)


class OracleTranscripts:
    """A perfect 'recognizer' for the corpus's own answer renderings (test-only)."""

    def __init__(self, rec, corpus):
        self.model, self.cfg = rec.model, rec.cfg
        self.table = {}
        for it in corpus.split("test"):
            wav = corpus.answer_wav(it, 16_000)
            self.table[self.key(wav)] = phoneme_tokens(" ".join(r.phonemes for r in it.answer_audio))

    @staticmethod
    def key(wav):
        return (wav.numel(), round(float(wav.double().abs().sum()), 3))

    def transcribe(self, wav, sample_rate):
        return list(self.table.get(self.key(wav), []))


@pytest.fixture(scope="module")
def oracle_judges(corpus, judges):
    return Judges(judges.cfg, OracleTranscripts(judges.recognizer, corpus), judges.voice, judges.language)


def _wrong_answer(items, item):
    """Another item of the same family and language with a different answer text."""
    return next(b for b in items if b.family == item.family and b.language == item.language
                and b.answer_text != item.answer_text)


def test_reference_audio_scores_full_marks(corpus, oracle_judges):
    items = corpus.split("test")
    for rec in reference_records(items[::5], corpus):
        s = judge_answer(rec, oracle_judges, corpus)
        assert s["correct"] == 1.0 and s["per"] == 0.0 and s["text_per"] == 0.0
        assert s["rate_ratio"] == pytest.approx(1.0) and s["rate_ok"] == 1.0
        assert s["f0_ratio"] == pytest.approx(1.0) and s["f0_ok"] == 1.0
        assert s["mel_l1"] == pytest.approx(0.0, abs=1e-9)


def test_wrong_answer_of_same_family_scores_lower(corpus, oracle_judges):
    items = corpus.split("test")
    item = next(it for it in items if it.family == "logical_reasoning")
    other = _wrong_answer(items, item)
    right = judge_answer(AnswerRecord(item, corpus.answer_wav(item, 16_000)), oracle_judges, corpus)
    wrong = judge_answer(AnswerRecord(item, corpus.answer_wav(other, 16_000), other.answer_text), oracle_judges, corpus)
    assert right["correct"] == 1.0 and wrong["correct"] == 0.0
    assert wrong["per"] > oracle_judges.cfg.correct_threshold and wrong["mel_l1"] > right["mel_l1"] + 0.1
    assert wrong["text_per"] == 0.0           # its audio does say its own text: aligned, just wrong
    assert math.isnan(right["text_per"])      # audio-only answer: no text channel to align


def test_threshold_calibration_separates_right_from_wrong(corpus, oracle_judges):
    cal = calibrate_correctness(oracle_judges, corpus)
    assert cal["reference"] == 1.0 and cal["reference_strict"] == 1.0
    assert cal["pairs_other"] > 50
    assert cal["other_answer"] < 0.05         # wrong answers of the same family are rejected
    if cal["pairs_same"]:
        assert cal["same_answer_other_rendering"] >= 0.9


def test_real_tiny_judges_run_end_to_end(corpus, judges):
    cal = calibrate_correctness(judges, corpus)   # the 15-step recognizer: numbers exist, in range
    assert all(0.0 <= cal[k] <= 1.0 or math.isnan(cal[k]) for k in ("reference", "other_answer"))
    res = evaluate(reference_records(corpus.split("test"), corpus), judges, corpus)
    families = {it.family for it in corpus.split("test")}
    table = res.table()
    assert all(f in table for f in families) and all(d in table.splitlines()[0] for d in DIMENSIONS)
    summary = res.summary("family")
    assert set(summary) == families | {"all"} and summary["all"]["n"] == len(corpus.split("test"))
    assert summary["all"]["rate_ok"] == 1.0 and summary["all"]["f0_ok"] == 1.0
    assert set(res.to_dict()["by_condition"]) == {it.condition for it in corpus.split("test")} | {"all"}


def test_classifiers_beat_majority_class(corpus, judges):
    acc = classifier_accuracy(judges, corpus, "test")
    for name in ("voice", "language"):
        assert acc[name]["accuracy"] > acc[name]["majority"], (name, acc[name])
    assert acc["voice"]["unseen_labels"] > 0      # the unseen test voice m4 is left out, and counted


@pytest.mark.parametrize("wav", [torch.zeros(0), torch.zeros(16_000), torch.zeros(100)])
def test_silence_scores_zero_without_crashing(corpus, oracle_judges, wav):
    item = corpus.split("test")[0]
    s = judge_answer(AnswerRecord(item, wav, "seven"), oracle_judges, corpus)
    assert s["correct"] == 0.0 and s["per"] == 1.0 and s["voice_ok"] == 0.0 and s["language_ok"] == 0.0
    assert s["rate_ok"] == 0.0 and s["f0_ok"] == 0.0 and math.isnan(s["mel_l1"])


@pytest.mark.parametrize("bad", ["not a record", AnswerRecord(None, torch.zeros(2, 100)),
                                 AnswerRecord(None, [0.0, 0.1]), AnswerRecord(None, torch.zeros(100, dtype=torch.int16)),
                                 AnswerRecord(None, torch.tensor([0.0, float("nan")]))])
def test_bad_input_is_a_one_line_value_error(corpus, oracle_judges, bad):
    with pytest.raises(ValueError) as e:
        judge_answer(bad, oracle_judges, corpus)
    assert "\n" not in str(e.value)


def test_style_contrasts_on_ground_truth(corpus):
    items = [it for it in corpus.split("test") if it.style in ("slow", "fast", "high", "low")]
    c = style_contrasts(reference_records(items, corpus))
    assert min(c["counts"].values()) >= 1     # the tiny test split has every one of the four styles
    assert c["slow_over_fast"] > 1.3 and c["high_over_low"] > 1.2


def test_dtw_mel_l1_matches_brute_force_and_ignores_tempo():
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 7, generator=rng), torch.randn(8, 5, generator=rng)
    c = (a.T[:, None] - b.T[None]).abs().mean(-1).tolist()
    D = [[math.inf] * 6 for _ in range(8)]
    D[0][0] = 0.0
    for i in range(1, 8):
        for j in range(1, 6):
            cost = c[i - 1][j - 1]
            D[i][j] = min(D[i - 1][j] + cost, D[i][j - 1] + cost, D[i - 1][j - 1] + 2 * cost)
    assert dtw_mel_l1(a, b) == pytest.approx(D[7][5] / 12)
    assert dtw_mel_l1(a, a.repeat_interleave(2, dim=1)) == pytest.approx(0.0)   # slower, same sounds


def test_radar_plot_returns_axis(corpus, judges):
    res = evaluate(reference_records(corpus.split("test")[::3], corpus), judges, corpus)
    ax = radar_plot({"reference": res, "again": EvalResult(res.scores)})
    assert ax.name == "polar" and len(ax.lines) == 2
    ax2 = radar_plot(res, dimension=None)
    assert len(ax2.get_xticklabels()) == 5


def test_answer_records_is_batched_generate_parse_and_vocode():
    """``answer_records`` (what notebook 09 and ``eval`` call) equals generating the batch,
    parsing each answer and vocoding its aligned LLSSS stream in order, as notebook 09's
    earlier local copy did: same text, same samples under the same seed."""
    from aqaa_ref.evaluation.scoring import answer_records
    from aqaa_ref.formats.parse import parse_answer
    from aqaa_ref.formats.text_tokenizer import decode_text
    from aqaa_ref.inference.generation import generate_answers
    from aqaa_ref.inference.pipeline import AQAA
    from aqaa_ref.training.recipe import Assets, Recipe
    from aqaa_ref.data import strided
    from aqaa_ref.vocoder import to_vocoder_codes

    recipe = Recipe.from_preset("tiny")
    assets = Assets(recipe, progress=False)
    aqaa = AQAA.from_recipe(recipe, assets=assets, progress=False)
    aqaa.max_new_tokens = 40
    items = strided(assets.corpus.split("test"), 3)
    torch.manual_seed(0)
    lib = answer_records(aqaa, items, assets.table)
    torch.manual_seed(0)
    prompts = [aqaa.prompt(assets.table.ids(it.question_audio.path), it.instruction, "text+audio") for it in items]
    by_hand = []
    for ids in generate_answers(aqaa.model, aqaa.builder, prompts, max_new_tokens=aqaa.max_new_tokens):
        p = parse_answer(ids, aqaa.vocab, aqaa.special)
        by_hand.append((decode_text(aqaa.builder.tok, p.text_ids),
                        aqaa.vocoder.decode(to_vocoder_codes(p.aligned_audio(), aqaa.vocab))))
    assert [r.item.id for r in lib] == [it.id for it in items]
    for r, (text, wav) in zip(lib, by_hand):
        assert r.text == text and torch.equal(r.wav, wav)


def test_wilson_interval_known_values():
    # textbook values (e.g. R: binom::binom.confint(k, n, method = "wilson"))
    assert wilson_interval(5, 10) == pytest.approx((0.236590, 0.763410), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277540), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((0.722460, 1.0), abs=1e-6)
    assert wilson_interval(1, 4, z=1.0) == pytest.approx((0.1, 0.5))   # z = 1: centre 0.3, half-width 0.2
    lo, hi = wilson_interval(125, 324)                                 # the shipped merge's `correct`
    assert lo < 125 / 324 < hi and hi - lo < wilson_interval(12, 32)[1] - wilson_interval(12, 32)[0]
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    for n in range(1, 200):                                            # the ends exactly, never 1e-17 off
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


def test_bootstrap_interval_agrees_with_wilson_and_covers_the_truth():
    # 0/1 values: on 400 items the percentile bootstrap and Wilson's interval nearly coincide
    vals = [1.0] * 150 + [0.0] * 250
    lo, hi = bootstrap_interval(vals, n_boot=4000)
    wlo, whi = wilson_interval(150, 400)
    assert lo == pytest.approx(wlo, abs=0.012) and hi == pytest.approx(whi, abs=0.012)
    assert bootstrap_interval(vals) == bootstrap_interval(vals)            # seeded
    assert bootstrap_interval([0.4] * 9) == pytest.approx((0.4, 0.4))       # no spread, no width
    # coverage: intervals from 200 independent samples of Bernoulli(0.3), n = 100, hold 0.3 ~95 % of the time
    g = torch.Generator().manual_seed(1)
    hits = sum(lo <= 0.3 <= hi for lo, hi in
               (bootstrap_interval((torch.rand(100, generator=g) < 0.3).float().tolist(), n_boot=500, seed=k)
                for k in range(200)))
    assert 0.88 <= hits / 200 <= 0.99
    with pytest.raises(ValueError, match="per-item"):
        bootstrap_interval([])


def test_paired_bootstrap_ignores_shared_item_difficulty():
    g = torch.Generator().manual_seed(0)
    hard = torch.rand(60, generator=g)                      # per-item difficulty shared by both variants
    a, b = (hard + 0.05).tolist(), hard.tolist()
    d, lo, hi = paired_bootstrap(a, b)
    assert d == pytest.approx(0.05) and lo == pytest.approx(0.05) and hi == pytest.approx(0.05)
    ua, ub = bootstrap_interval(a), bootstrap_interval(b)
    assert ua[0] < ub[1]                                    # unpaired, the two intervals overlap
    assert paired_bootstrap(b, b) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_intervals_count_each_group_and_ignore_nan():
    scores = ([dict(family="a", condition="x", correct=float(i < 5), voice_ok=1.0, per=0.5) for i in range(10)]
              + [dict(family="b", condition="x", correct=0.0, voice_ok=math.nan, per=0.5)])
    res = EvalResult(scores)
    iv = res.intervals("family", ("correct", "voice_ok"))
    assert list(iv) == ["a", "b", "all"]
    assert iv["a"]["correct"] == pytest.approx((5, 10, *wilson_interval(5, 10)))
    assert iv["all"]["correct"][:2] == (5, 11) and iv["all"]["voice_ok"][:2] == (10, 10)   # NaN not counted
    table = res.interval_table("family", ("correct",))
    assert "5/10  0.500 [0.237, 0.763]" in table.splitlines()[1]
    with pytest.raises(ValueError, match="per is not a 0/1 score"):
        res.intervals("family", ("per",))
