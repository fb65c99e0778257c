"""aqaa_ref.data.corpus: deterministic items, disjoint splits, held-out facts, safe caching."""
import json
from dataclasses import replace

import pytest

from aqaa_ref.data import CONDITIONS, FAMILIES, CorpusConfig, build_corpus, load_corpus, plan_items
from aqaa_ref.data.corpus import rendering_path
from aqaa_ref.data.phonemes import phoneme_tokens
from aqaa_ref.data.styles import MALE_VOICES, UNSEEN_VOICE, assistant, number_word
from aqaa_ref.data.tasks import TaskContext, heldout_facts, make_item

TINY = CorpusConfig.from_preset("tiny", workers=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(TINY, root=tmp_path_factory.mktemp("corpus"), progress=False)


def test_plan_is_deterministic_and_seed_dependent():
    a, b = plan_items(TINY), plan_items(TINY)
    assert [i.to_dict() for i in a] == [i.to_dict() for i in b]
    c = plan_items(replace(TINY, seed=1))
    assert [i.question.text for i in a] != [i.question.text for i in c]


def test_golden_first_items_under_seed_0():
    items = plan_items(CorpusConfig.from_preset("toy"))
    assert [(i.id, i.question.text, i.answer_text) for i in items[:2]] == [
        ("train-logical_reasoning-00000", "which is bigger, seven or one", "seven"),
        ("train-logical_reasoning-00001", "which is bigger, four or eight", "eight"),
    ]


def test_splits_are_disjoint_and_conditions_hold():
    items = plan_items(CorpusConfig.from_preset("toy"))
    by_split = {s: [i for i in items if i.split == s] for s in ("train", "val", "test")}
    keys = {s: {(i.question.key(), i.instruction) for i in v} for s, v in by_split.items()}
    assert not (keys["train"] & keys["val"]) and not (keys["train"] & keys["test"]) and not (keys["val"] & keys["test"])
    train_facts = {i.fact for i in by_split["train"]}
    unseen = [i for i in by_split["test"] if i.condition == "unseen_fact"]
    assert unseen and all(i.fact not in train_facts for i in unseen)
    assert all(i.question.voice == UNSEEN_VOICE for i in by_split["test"] if i.condition == "unseen_voice")
    assert all(i.question.voice != UNSEEN_VOICE for i in by_split["train"])
    train_rates = {i.question.rate for i in by_split["train"] if i.family != "voice_understanding"}
    assert all(i.question.rate not in train_rates for i in by_split["test"]
               if i.condition == "unseen_prosody" and i.family != "voice_understanding")
    assert {i.condition for i in by_split["test"]} == set(CONDITIONS)
    assert {i.family for i in items} == set(FAMILIES)
    assert len({i.id for i in items}) == len(items)


def test_answers_are_correct_for_their_facts():
    for item in plan_items(CorpusConfig.from_preset("toy"))[:400]:
        task, *args = item.fact.split(":")
        if task in ("plus", "minus", "times", "bigger"):
            a, b = map(int, args)
            want = {"plus": a + b, "minus": a - b, "times": a * b, "bigger": max(a, b)}[task]
            assert item.answer_text == number_word(want, item.language), item


def test_voice_understanding_answers_follow_the_question_voice():
    ctx = TaskContext(condition="unseen_voice")
    import random
    rng = random.Random(0)
    for _ in range(30):
        it = make_item("voice_understanding", rng, ctx)
        if it.task == "gender":
            assert it.answer_text == ("a man" if it.question.voice in MALE_VOICES else "a woman")
        elif it.task == "speed":
            assert it.answer_text == ("fast" if it.question.rate > 200 else "slow")
        else:
            assert it.answer_text == ("high" if it.question.pitch > 50 else "low")


def test_multi_segment_answers_switch_style():
    items = [i for i in plan_items(CorpusConfig.from_preset("toy")) if i.is_multi_segment]
    assert len(items) > 50
    for it in items:
        s1, s2 = it.style.split(">")
        assert [a.style for a in it.answer] == [s1, s2] and it.answer[0].key() != it.answer[1].key()


def test_heldout_facts_are_reproducible():
    import random
    assert heldout_facts(random.Random(3), 0.15) == heldout_facts(random.Random(3), 0.15)
    assert len([k for k in heldout_facts(random.Random(3), 0.15) if k.startswith("plus:")]) == 15


def test_built_corpus_has_audio_phonemes_and_views(corpus):
    assert len(corpus) == len(plan_items(TINY))
    item = corpus.split("train")[0]
    wav = corpus.load(item.question_audio)
    assert wav.ndim == 1 and abs(wav.numel() / 16_000 - item.question_audio.seconds) < 1e-3
    assert phoneme_tokens(item.question_audio.phonemes)
    assert corpus.answer_wav(item).numel() > 0
    for view in ("asr_pairs", "tts_pairs", "aqta", "aqtaa"):
        assert len(getattr(corpus, view)("train")) > 0
    assert all(len(r["segments"]) >= 1 for r in corpus.aqtaa("train"))
    stats = corpus.stats()
    assert stats["items"] == len(corpus) and stats["audio_hours"] > 0


def test_rebuild_reuses_the_manifest_and_reload_matches(corpus):
    again = build_corpus(TINY, root=corpus.root, progress=False)
    assert [i.to_dict() for i in again.items] == [i.to_dict() for i in corpus.items]
    assert [i.to_dict() for i in load_corpus(corpus.root).items] == [i.to_dict() for i in corpus.items]


def test_interrupted_build_leaves_nothing_trusted(tmp_path, corpus):
    # simulate a crash after some clips were rendered but before the manifest: a half-written
    # temp file and no manifest. The next build must not trust it, and must finish cleanly.
    root = tmp_path / "c"
    sp = assistant("seven")
    partial = root / rendering_path(sp)
    partial.parent.mkdir(parents=True)
    (partial.parent / f".{partial.name}.123.tmp").write_bytes(b"RIFF-garbage")
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_corpus(root)
    built = build_corpus(TINY, root=root, progress=False)
    assert (root / "manifest.jsonl").exists()
    assert json.loads((root / "config.json").read_text())["seed"] == TINY.seed
    assert len(built) == len(corpus)


def test_unknown_preset_and_split_raise(corpus):
    with pytest.raises(ValueError, match="unknown corpus preset"):
        CorpusConfig.from_preset("huge")
    with pytest.raises(ValueError, match="unknown split"):
        corpus.split("dev")


def _plan_digest(cfg) -> str:
    import hashlib

    items = plan_items(cfg)
    blob = "\n".join(f"{it.id}|{it.question.key()}|{[a.key() for a in it.answer]}|{it.instruction}" for it in items)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def test_one_phrasing_plans_exactly_the_corpus_cached_before_phrasings_existed():
    from aqaa_ref.cache import config_hash

    tiny = CorpusConfig.from_preset("tiny")
    assert _plan_digest(tiny) == "181f7c665cfd0aaa"          # the plan before PHRASINGS was added
    assert config_hash(CorpusConfig.from_preset("toy")) == "38c649edd574"
    assert tiny.conditions == CONDITIONS


def test_varied_phrasing_holds_some_wordings_out_for_an_unseen_phrasing_condition():
    import re

    from aqaa_ref.data.tasks import PHRASINGS, TEMPLATES

    cfg = CorpusConfig.from_preset("tiny", phrasing="varied", test_per_family_condition=6)
    assert cfg.conditions[-1] == "unseen_phrasing"
    for task, by_lang in TEMPLATES.items():
        for lang, one in by_lang.items():
            assert PHRASINGS[task][lang][0][0] == one       # the single wording is the first trained one
            assert not set(PHRASINGS[task][lang][0]) & set(PHRASINGS[task][lang][1])

    def pattern(template):  # a template as a regex over the rendered question
        return re.compile("^" + re.escape(template).replace(r"\{a\}", ".+").replace(r"\{b\}", ".+") + "$")

    train_pats = [pattern(t) for by in PHRASINGS.values() for tr, _ in by.values() for t in tr]
    held_pats = [pattern(t) for by in PHRASINGS.values() for _, ho in by.values() for t in ho]
    items = plan_items(cfg)
    core = lambda it: it.question.text.split(", ", 1)[1] if it.question.text.startswith("answer ") else it.question.text  # noqa: E731
    trained = [it for it in items if it.split == "train" and it.task != "switch"]
    unseen = [it for it in items if it.condition == "unseen_phrasing" and it.task != "switch"]
    assert unseen and {it.family for it in unseen} >= {"logical_reasoning", "gaming", "voice_understanding"}
    assert all(any(p.match(core(it)) for p in held_pats) for it in unseen)
    assert not any(any(p.match(core(it)) for p in held_pats) for it in trained)
    assert all(any(p.match(core(it)) for p in train_pats) for it in trained)
    assert len({core(it).split(" ")[0] for it in trained if it.language == "en"}) > 5   # many wordings in training
    assert _plan_digest(cfg) != _plan_digest(CorpusConfig.from_preset("tiny", test_per_family_condition=6))
    with pytest.raises(ValueError, match="phrasing must be one of"):
        CorpusConfig(phrasing="many")


def test_many_voices_train_on_twelve_and_hold_five_out():
    from aqaa_ref.data.styles import MANY_TRAIN_VOICES, MANY_UNSEEN_VOICES

    cfg = CorpusConfig.from_preset("tiny", voices="many", test_per_family_condition=8)
    items = plan_items(cfg)
    train_voices = {it.question.voice for it in items if it.split == "train"}
    unseen = {it.question.voice for it in items if it.condition == "unseen_voice"}
    assert train_voices == set(MANY_TRAIN_VOICES) and not train_voices & set(MANY_UNSEEN_VOICES)
    assert unseen == set(MANY_UNSEEN_VOICES)
    for it in items:                          # the gender answers follow eSpeak's own variant files
        if it.task == "gender":
            assert it.answer_text == ("a man" if it.question.voice in MALE_VOICES else "a woman")
    from aqaa_ref.data.styles import Speech

    wav, sr, _ = Speech(text="three", voice="Alicia").synthesize()
    assert wav.size > 0.1 * sr
    assert _plan_digest(CorpusConfig.from_preset("tiny")) == "181f7c665cfd0aaa"   # "seven" unchanged


# ----------------------------------------------------------------------------- long answers

def _long_items(n=200, **ctx):
    import random
    rng = random.Random(0)
    return [make_item("long_answer", rng, TaskContext(**ctx)) for _ in range(n)]


def test_long_answers_follow_from_the_question():
    from aqaa_ref.data.tasks import STYLE_ADVERBS
    items = _long_items()
    assert {it.task for it in items} == {"count", "spell", "list", "sentence"}
    for it in items:
        words, q = it.answer_text.split(), it.question.text
        assert 7 <= len(words) <= 14 or it.task == "spell", it
        kind, *args = it.fact.split(":")
        if kind == "count":
            a, b = map(int, args)
            step = 1 if b > a else -1
            assert words == [number_word(k, "en") for k in range(a, b + step, step)] and 10 <= len(words) <= 14
            assert q == f"count from {number_word(a, 'en')} to {number_word(b, 'en')}"
        elif kind == "spell":
            w1, w2 = args
            assert it.answer_text == f"{' '.join(w1)} and {' '.join(w2)}" and q == f"spell {w1} and {w2}"
        elif kind == "list":
            assert q == f"repeat this list, {it.answer_text}" and len(set(words)) == len(words)
        else:
            assert q == f"say this {STYLE_ADVERBS[it.style]}, {it.answer_text}" and it.answer[0].style == it.style
    assert items[0].answer_text == "the red book follows the big tree at night"      # golden, seed 0


def test_long_answers_have_every_varied_phrasing():
    for cond in ("seen", "unseen_phrasing"):
        assert len({it.question.text.split(",")[0] for it in _long_items(100, phrasing="varied", condition=cond)}) > 3


def test_a_corpus_can_carry_the_long_answer_family_in_every_split():
    counts = {**TINY.family_counts, "long_answer": 50}
    items = plan_items(replace(TINY, family_counts=counts))
    long = [it for it in items if it.family == "long_answer"]
    assert {it.split for it in long} == {"train", "val", "test"}
    assert {it.condition for it in long if it.split == "test"} == {"seen", "unseen_voice", "unseen_prosody"}
    assert {it.family for it in plan_items(TINY)} == set(FAMILIES)         # not drawn unless asked for


def test_long_answer_items_are_new_cached_and_several_seconds_long(corpus):
    from aqaa_ref.data import long_answer_items
    items = long_answer_items(corpus, 4, 3, progress=False)
    assert [it.split for it in items] == ["train"] * 4 + ["test"] * 3
    assert [it.condition for it in items[4:]] == ["seen", "unseen_voice", "unseen_prosody"]
    assert [it.id for it in items[4:]][0] == "test-long-00000-seen"
    known = {(it.question.key(), it.instruction) for it in corpus.items}
    assert not known & {(it.question.key(), it.instruction) for it in items}
    assert len({it.question.key() for it in items}) == len(items)
    assert all(it.answer_audio[0].seconds > 2.0 for it in items)
    assert corpus.answer_wav(items[0]).numel() == pytest.approx(items[0].answer_audio[0].seconds * 16_000, abs=1)
    assert (corpus.root / "long_answers-4-3.jsonl").exists()
    assert long_answer_items(corpus, 4, 3, progress=False) == items                  # read back, not redrawn
