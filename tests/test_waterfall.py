"""aqaa_ref.evaluation.waterfall: where answers are lost, on the tiny models.

The tiny recognizer hears nothing, so the stages that need a listener use test_eval's
oracle judges (the eSpeak phonemes of the corpus's own renderings, nothing for other audio).
"""
import torch
import pytest

from aqaa_ref.data import strided
from aqaa_ref.evaluation.judges import Judges
from aqaa_ref.evaluation.waterfall import CEILINGS, STAGES, summarize, waterfall, waterfall_table
from aqaa_ref.evaluation.scoring import AnswerRecord
from aqaa_ref.inference.pipeline import AQAA
from aqaa_ref.tokenizer.ctc import greedy_decode
from aqaa_ref.tokenizer.features import causal_log_mel
from aqaa_ref.training.recipe import Assets, Recipe

from test_eval import OracleTranscripts

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    assets = Assets(Recipe.from_preset("tiny"), progress=False)
    aqaa = AQAA.from_recipe(assets.recipe, assets=assets, progress=False)
    judges = Judges.load_or_train(assets.corpus, "tiny", progress=False)
    oracle = Judges(judges.cfg, OracleTranscripts(judges.recognizer, assets.corpus), judges.voice, judges.language)
    return assets, aqaa, oracle


def test_reading_lossless_codes_equals_transcribing_the_audio(tiny):
    """With the clip's own encoder vectors as the codebook, code t = vector t: reading the codes
    through the CTC head must give exactly the phonemes transcribing the audio gives."""
    assets, aqaa, _ = tiny
    lt = aqaa.dual.linguistic
    wav = assets.dual.prepare(assets.corpus.load(assets.corpus.split("train")[0].answer_audio[0]))
    mel = causal_log_mel(torch.nn.functional.pad(wav, (0, lt.lookahead_samples)))[None]
    h = lt.hidden(mel)[0]
    lossless = lt.with_codebook(h)
    # the tiny head (seconds of training) hears only blanks; a seeded random head reads a lot
    torch.manual_seed(0)
    torch.nn.init.normal_(lossless.ctc_head.weight, std=1.0)
    heard = lossless.transcribe(wav)
    assert len(heard) > 5
    assert lossless.read_codes(torch.arange(h.shape[0])) == heard
    assert lossless.inventory.decode(greedy_decode(lossless.ctc_log_probs(h[None])[0])) == heard
    assert lt.read_codes([]) == []
    with pytest.raises(ValueError, match="linguistic codes must lie in"):
        lt.read_codes([lt.cfg.codebook_size])


def _answered_by(assets, item, by) -> AnswerRecord:
    """``item`` answered with ``by``'s reference: its text, its audio ids in the answer format, its audio."""
    return AnswerRecord(item, assets.corpus.answer_wav(by, 16_000), by.answer_text, assets.builder.answer_ids(by))


def test_reference_answers_pass_every_stage_and_wrong_ones_fail_at_the_first(tiny):
    assets, aqaa, oracle = tiny
    items = strided(assets.corpus.split("test"), 4)
    right = waterfall(aqaa, [_answered_by(assets, it, it) for it in items], assets.table, oracle, assets.corpus)
    assert [r["id"] for r in right] == [it.id for it in items]
    for r in right:
        assert r["understood"] == 1.0 and r["heard_right"] == 1.0 and r["ref_audio"] == 1.0
        # the answer's tokens are the reference's: whatever the head reads, it reads the same
        assert r["token_per"] == 0.0 or r["ref_token_per"] == 1.0
    # another item's answer (a different answer text) is not understood, so it survives no stage
    wrong = [next(b for b in assets.corpus.split("test") if b.answer_text != it.answer_text) for it in items]
    records = [_answered_by(assets, it, w) for it, w in zip(items, wrong)]
    rows = waterfall(aqaa, records, assets.table, oracle, assets.corpus)
    s = summarize(rows)["all"]
    assert s["understood"] == s["tokens_right"] == s["heard_right"] == 0.0
    assert s["ref_audio"] == 1.0          # the ceilings do not depend on the answers
    # judged scores passed in are used as they are; a count mismatch or missing ids is an error
    given = waterfall(aqaa, records, assets.table, oracle, assets.corpus, scores=[dict(correct=1.0, per=0.0)] * len(records))
    assert all(r["heard_right"] == 1.0 for r in given)
    with pytest.raises(ValueError, match="scores for"):
        waterfall(aqaa, records, assets.table, oracle, assets.corpus, scores=[])
    with pytest.raises(ValueError, match="generated ids"):
        waterfall(aqaa, [AnswerRecord(items[0], records[0].wav)], assets.table, oracle, assets.corpus)


def test_summary_counts_answers_that_survive_every_stage_so_far():
    row = lambda cond, u, t, h: dict(condition=cond, understood=u, tokens_right=t, heard_right=h,  # noqa: E731
                                     **{c: 1.0 for c in CEILINGS})
    # heard right without being understood (a lucky rendering) does not count downstream
    rows = [row("seen", 1, 1, 1), row("seen", 1, 0, 1), row("seen", 0, 1, 1), row("unseen_voice", 1, 1, 0)]
    s = summarize(rows)
    assert s["seen"] == dict(n=3, understood=2 / 3, tokens_right=1 / 3, heard_right=1 / 3, **{c: 1.0 for c in CEILINGS})
    assert s["all"]["understood"] == 0.75 and s["all"]["tokens_right"] == 0.5 and s["all"]["heard_right"] == 0.25
    assert list(s) == ["seen", "unseen_voice", "all"]
    text = waterfall_table(rows)
    assert text.splitlines()[0].split()[:2 + len(STAGES)] == ["condition", "n", *STAGES]
