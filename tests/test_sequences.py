"""aqaa_ref.training.sequences: every stage's examples, built from items, audio codes and the BPE."""
import random
from dataclasses import replace

import pytest

from aqaa_ref.data import CorpusConfig, plan_items
from aqaa_ref.data.tasks import Rendering
from aqaa_ref.formats.answer_format import get_format
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.formats.constrained import check_well_formed
from aqaa_ref.formats.id_layout import IGNORE_INDEX
from aqaa_ref.formats.id_layout import AudioVocab
from aqaa_ref.formats.text_tokenizer import train_text_tokenizer
from aqaa_ref.training.sequences import (EVASIONS, SYSTEM_PROMPTS, AudioTable, SequenceBuilder, own_answer_pairs,
                                         preference_pairs, sft_examples)

VOCAB = AudioVocab(text_vocab_size=400, n_linguistic=16, n_semantic=32)


@pytest.fixture(scope="module")
def setup():
    items = [it for it in plan_items(CorpusConfig.from_preset("tiny")) if it.split == "train"]
    rng = random.Random(0)
    codes, fixed = {}, []
    for it in items:  # fabricate renderings and codes: 2 linguistic : 3 semantic per 120 ms
        def fake(name, seconds):
            g = max(1, round(seconds / 0.12))
            codes[name] = ([rng.randrange(16) for _ in range(2 * g)], [rng.randrange(32) for _ in range(3 * g)])
            return Rendering(name, "", seconds)
        q = fake(f"q-{it.id}", 1.0 + rng.random())
        a = [fake(f"a-{it.id}-{k}", 0.4 + 0.3 * rng.random()) for k in range(len(it.answer))]
        fixed.append(replace(it, question_audio=q, answer_audio=a))
    texts = [s.text for it in items for s in (it.question, *it.answer)] + list(SYSTEM_PROMPTS.values()) + list(EVASIONS.values())
    tok = train_text_tokenizer(texts, VOCAB)
    return fixed, AudioTable(codes, VOCAB), tok


def test_audio_table_interleaves_llsss_with_offsets():
    table = AudioTable({"x": ([1, 2, 3, 4, 5], [7, 8, 9, 10, 11, 12, 13])}, VOCAB)
    L, S = VOCAB.linguistic_offset, VOCAB.semantic_offset
    assert table.ids("x") == [L + 1, L + 2, S + 7, S + 8, S + 9, L + 3, L + 4, S + 10, S + 11, S + 12]


def test_sft_example_masks_the_prompt_and_learns_the_answer(setup):
    items, table, tok = setup
    b = SequenceBuilder(tok, table, get_format("ratio_10_15"))
    it = next(i for i in items if not i.is_multi_segment)
    ex = b.sft_example(it)
    ids, labels = ex["input_ids"], ex["labels"]
    assert len(ids) == len(labels)
    first = next(k for k, l in enumerate(labels) if l != IGNORE_INDEX)
    prefix = [b.special.bot] + list(b.chat.role_ids["assistant"])  # learning starts after <|BOT|>assistant\n
    assert ids[first - len(prefix):first] == prefix
    answer = ids[first:]
    assert labels[first:] == answer and answer[-1] == b.special.eot
    parsed = parse_answer(answer, VOCAB, b.special)
    assert parsed.issues == [] and parsed.ended
    assert tok.decode(parsed.text_ids) == it.answer_text
    assert parsed.audio_ids == table.ids(it.answer_audio[0].path)
    # the question audio sits in the prompt, unlearned
    q = table.ids(it.question_audio.path)
    start = ids.index(b.special.audio_start)
    assert ids[start + 1:start + 1 + len(q)] == q and all(l == IGNORE_INDEX for l in labels[:first])


def test_text_output_and_instructions(setup):
    items, table, tok = setup
    b = SequenceBuilder(tok, table, get_format("ratio_10_15"))
    it = next(i for i in items if i.instruction)
    ex = b.sft_example(it, output="text")
    learned = [t for t, l in zip(ex["input_ids"], ex["labels"]) if l != IGNORE_INDEX]
    assert not any(VOCAB.is_audio(t) for t in learned)
    assert tok.decode(learned[:-1]) == it.answer_text
    assert it.instruction in tok.decode(ex["input_ids"], skip_special_tokens=True)


@pytest.mark.parametrize("mode", ["pre_interleaved", "marker_removal", "marker_preserving"])
def test_multi_segment_answers_in_every_concatenation_mode(setup, mode):
    items, table, tok = setup
    b = SequenceBuilder(tok, table, get_format("ratio_10_15"), concat_mode=mode)
    it = next(i for i in items if i.is_multi_segment)
    ans = b.answer_ids(it)
    parsed = parse_answer(ans + [b.special.eot], VOCAB, b.special)
    assert parsed.audio_ids == sum((table.ids(r.path) for r in it.answer_audio), [])
    spans = sum(1 for s in parsed.segments if s.kind == "audio")
    if mode == "marker_removal":
        assert spans == 1  # short answers: one span, the boundary leaves no trace
    else:
        assert spans >= 2
    assert check_well_formed(ans + [b.special.eot], b.fmt, VOCAB, b.special) == []


def test_preference_pairs_share_the_prompt_and_differ_in_text(setup):
    items, table, tok = setup
    b = SequenceBuilder(tok, table, get_format("ratio_10_15"))
    ev = {(it.language, it.style): table.ids(it.answer_audio[0].path) for it in items}
    pairs = preference_pairs(b, items, ev, seed=0, evasion_fraction=0.5)
    assert pairs and {p["kind"] for p in pairs} <= {"wrong_answer", "evasion"}
    for p in pairs[:20]:
        c0 = next(k for k, l in enumerate(p["chosen_labels"]) if l != IGNORE_INDEX)
        r0 = next(k for k, l in enumerate(p["rejected_labels"]) if l != IGNORE_INDEX)
        assert c0 == r0 and p["chosen_input_ids"][:c0] == p["rejected_input_ids"][:r0]
        ct = [t for t in p["chosen_input_ids"][c0:] if VOCAB.is_text(t)]
        rt = [t for t in p["rejected_input_ids"][r0:] if VOCAB.is_text(t)]
        assert ct != rt


def test_own_answer_pairs_reject_the_models_own_wrong_ended_answers(setup):
    items, table, tok = setup
    b = SequenceBuilder(tok, table, get_format("ratio_10_15"))
    single = [it for it in items if not it.is_multi_segment][:4]
    multi = next(it for it in items if it.is_multi_segment)
    eot = b.special.eot
    other = b.answer_ids(single[1])                                   # a well-formed but wrong answer
    answers = [other + [eot], b.answer_ids(single[1]) + [eot], other, other + [eot], other + [eot]]
    correct = [False, True, False, False, False]
    pairs = own_answer_pairs(b, single + [multi], answers, correct)
    # kept: item 0 (wrong, ended) and item 3; dropped: right (1), never ended (2), multi-segment (4)
    assert len(pairs) == 2 and {p["kind"] for p in pairs} == {"own_wrong_answer"}
    p = pairs[0]
    r0 = next(k for k, l in enumerate(p["rejected_labels"]) if l != IGNORE_INDEX)
    assert p["rejected_input_ids"][r0:] == other + [eot]              # the model's answer, EOT once
    assert p["chosen_input_ids"][:r0] == p["rejected_input_ids"][:r0]  # the same prompt
    assert p["chosen_input_ids"][r0:] == b.answer_ids(single[0]) + [eot]
    with pytest.raises(ValueError, match="one answer and one verdict per item"):
        own_answer_pairs(b, single, answers, correct)


def test_sft_mix_is_seeded(setup):
    items, table, tok = setup
    b = SequenceBuilder(tok, table, get_format("ratio_10_15"))
    a, c = sft_examples(b, items, 0.5, seed=1), sft_examples(b, items, 0.5, seed=1)
    assert a == c and len(a) > len(items)
