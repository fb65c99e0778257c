"""Answer formats, multi-segment concatenation, chat masks, the parser and constrained decoding."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import LogitsProcessor, LogitsProcessorList

from aqaa_ref.backbone.model import Step1Config, Step1ForCausalLM
from aqaa_ref.formats.answer_format import (FORMATS, IGNORE_INDEX, ChatTemplate, Format, SpecialIds, build_chat,
                                            check_audio_stream, concat_segments, get_format, interleave_answer,
                                            wrap_audio)
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.formats.constrained import FormatLogitsProcessor, FormatSchedule, check_well_formed
from aqaa_ref.formats.id_layout import AudioVocab

V = AudioVocab(text_vocab_size=64, n_linguistic=8, n_semantic=16)   # ids: text 0..63, L 64..71, S 72..87
SP = SpecialIds()
AS, AE, EOT = SP.audio_start, SP.audio_end, SP.eot


# tiny tensors: one intra-op thread (on a busy 2-core box, OpenMP barriers wait on the
# scheduler and make each tiny op take milliseconds); the fixture is in conftest.py
pytestmark = pytest.mark.usefixtures("one_thread")


def group(k: int) -> list[int]:
    """A recognisable LLSSS group: L ids 64+k%8 (twice), S ids 72+k%16 (three times)."""
    return [64 + k % 8, 64 + (k + 1) % 8, 72 + k % 16, 72 + (k + 1) % 16, 72 + (k + 2) % 16]


def audio(n_groups: int, start: int = 0) -> list[int]:
    return [t for g in range(start, start + n_groups) for t in group(g)]


def text(n: int, start: int = 10) -> list[int]:
    return [start + k % 50 for k in range(n)]


# --------------------------------------------------------------------------- formats
def test_ratio_10_15_golden_sequence():
    t, a = text(12), audio(4)
    out = interleave_answer(FORMATS["ratio_10_15"], t, a, V)
    assert out == t[:10] + [AS] + a[:15] + [AE] + t[10:] + [AS] + a[15:] + [AE]


def test_text_runs_out_first_rest_of_audio_in_final_span():
    t, a = text(4), audio(4)
    out = interleave_answer(Format.ratio(3, 5), t, a, V)
    assert out == t[:3] + [AS] + a[:5] + [AE] + t[3:] + [AS] + a[5:] + [AE]


def test_audio_runs_out_first_rounds_go_on_with_empty_spans():
    t, a = text(8), audio(1)
    out = interleave_answer(Format.ratio(3, 5), t, a, V)
    assert out == t[:3] + [AS] + a + [AE] + t[3:6] + [AS, AE] + t[6:] + [AS, AE]


def test_both_run_out_together_and_empty_inputs():
    out = interleave_answer(Format.ratio(3, 5), text(3), audio(1), V)
    assert out == text(3) + [AS] + audio(1) + [AE]
    assert interleave_answer(FORMATS["ratio_10_15"], [], [], V) == [AS, AE]


def test_audio_only_and_text_cot():
    t, a = text(7), audio(2)
    assert interleave_answer(FORMATS["audio_only"], t, a, V) == [AS] + a + [AE]
    assert interleave_answer(FORMATS["text_cot"], t, a, V) == t + [AS] + a + [AE]


def test_tri_codebook_view():
    f = FORMATS["ratio_10_15"]
    assert f.tri_codebook() == (10, 6, 9)
    assert Format.from_tri_codebook(10, 6, 9) == f
    assert FORMATS["ratio_3_5"].tri_codebook() == (3, 2, 3)
    assert FORMATS["ratio_6_50"].tri_codebook() == (6, 20, 30)
    assert FORMATS["text_cot"].tri_codebook() is None
    parsed = parse_answer(interleave_answer(f, text(35), audio(12), V), V)
    assert parsed.rounds(V) == [(10, 6, 9), (10, 6, 9), (10, 6, 9), (5, 6, 9)]
    with pytest.raises(ValueError, match="whole number of 2\\+3 groups"):
        Format.from_tri_codebook(10, 5, 9)


def test_format_names_and_validation():
    assert get_format("ratio_10_15") is FORMATS["ratio_10_15"]
    assert get_format("ratio_13_26") == Format("ratio_13_26", 13, 26)
    with pytest.raises(ValueError, match="unknown format"):
        get_format("ratio_ten")
    with pytest.raises(ValueError, match="audio-only"):
        Format("bad", 0, 15)


def test_bad_audio_stream_is_refused():
    with pytest.raises(ValueError, match="not whole 2\\+3 groups"):
        check_audio_stream(audio(1)[:4], V)
    with pytest.raises(ValueError, match="position 2 .* semantic"):
        interleave_answer(FORMATS["ratio_10_15"], [], [64, 65, 66, 72, 73], V)
    with pytest.raises(ValueError, match="not a plain text id"):
        interleave_answer(FORMATS["ratio_10_15"], [10, AS], audio(1), V)


FORMAT_LIST = list(FORMATS.values()) + [Format.ratio(10, 7), Format("text_then_all_audio", 4, None)]


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(FORMAT_LIST), n_text=st.integers(0, 60), n_groups=st.integers(0, 25))
def test_round_trip_every_format(fmt, n_text, n_groups):
    t, a = text(n_text), audio(n_groups)
    ans = interleave_answer(fmt, t, a, V) + [EOT]
    parsed = parse_answer(ans, V)
    assert parsed.issues == [] and parsed.ended
    assert parsed.text_ids == (t if fmt.text_per_chunk != 0 else [])
    assert parsed.audio_ids == a == parsed.aligned_audio()
    assert parsed.linguistic_ids == [x for x in a if V.is_linguistic(x)]
    assert check_well_formed(ans, fmt, V) == []


# --------------------------------------------------------------------------- multi-segment
def test_three_concatenations_golden():
    f = Format.ratio(3, 5)
    s1, s2 = (text(2, 10), audio(2, 0)), (text(2, 20), audio(1, 5))
    pre = concat_segments(f, [s1, s2], "pre_interleaved", V)
    assert pre == s1[0] + [AS] + s1[1] + [AE] + s2[0] + [AS] + s2[1] + [AE]
    removal = concat_segments(f, [s1, s2], "marker_removal", V)
    t, a = s1[0] + s2[0], s1[1] + s2[1]
    assert removal == t[:3] + [AS] + a[:5] + [AE] + t[3:] + [AS] + a[5:] + [AE]
    keep = concat_segments(f, [s1, s2], "marker_preserving", V)
    assert keep == t[:3] + [AS] + a[:5] + [AE] + t[3:] + [AS] + a[5:10] + [AE, AS] + a[10:] + [AE]
    with pytest.raises(ValueError, match="mode must be"):
        concat_segments(f, [s1], "glue", V)


@settings(max_examples=100, deadline=None)
@given(fmt=st.sampled_from(FORMAT_LIST), mode=st.sampled_from(["pre_interleaved", "marker_removal",
                                                                 "marker_preserving"]),
       sizes=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10)), min_size=1, max_size=4))
def test_multi_segment_round_trip_and_well_formed(fmt, mode, sizes):
    segs = [(text(nt, 10 + 7 * k), audio(ng, 3 * k)) for k, (nt, ng) in enumerate(sizes)]
    ans = concat_segments(fmt, segs, mode, V) + [EOT]
    parsed = parse_answer(ans, V)
    assert parsed.issues == []
    assert parsed.audio_ids == [x for _, a in segs for x in a]
    if fmt.text_per_chunk != 0:
        assert parsed.text_ids == [x for t, _ in segs for x in t]
    assert check_well_formed(ans, fmt, V) == []
    if mode == "marker_preserving":                        # a span starts at every segment boundary
        span_starts, k = set(), 0
        for s in parsed.segments:
            if s.kind == "audio" and s.ids:
                span_starts.add(k)
                k += len(s.ids)
        cuts, total = set(), 0
        for _, a in segs[:-1]:
            total += len(a)
            cuts.add(total)
        assert {c for c in cuts if 0 < c < len(parsed.audio_ids)} <= span_starts


# --------------------------------------------------------------------------- chat
ROLES = {"system": [40, 9], "human": [41, 9], "assistant": [42, 9]}     # "{role}\n" ids


def test_chat_masks_the_prompt():
    tpl = ChatTemplate(ROLES)
    q, ans = wrap_audio(audio(1)), text(3) + [AS] + audio(1) + [AE]
    ids, labels = build_chat(tpl, [("system", [11, 12]), ("human", q), ("assistant", ans)])
    prompt = [SP.bos, SP.bot, 40, 9, 11, 12, EOT, SP.bot, 41, 9, *q, EOT, SP.bot, 42, 9]
    assert ids == prompt + ans + [EOT]
    assert labels == [IGNORE_INDEX] * len(prompt) + ans + [EOT]


def test_chat_multi_turn_train_on_last_or_all():
    tpl = ChatTemplate(ROLES)
    turns = [("human", [11]), ("assistant", [12]), ("human", [13]), ("assistant", [14])]
    ids, last = build_chat(tpl, turns)
    _, every = build_chat(tpl, turns, train_on="all")
    assert [t for t, l in zip(ids, last) if l != IGNORE_INDEX] == [14, EOT]
    assert [t for t, l in zip(ids, every) if l != IGNORE_INDEX] == [12, EOT, 14, EOT]
    gen, gen_labels = build_chat(tpl, turns[:3], add_generation_prompt=True)
    assert gen[-3:] == [SP.bot, 42, 9] and gen_labels[-3:] == [IGNORE_INDEX] * 3
    with pytest.raises(ValueError, match="role must be"):
        build_chat(tpl, [("user", [11])])


# --------------------------------------------------------------------------- parser
def test_parser_malformed_cases_have_defined_results():
    g = audio(1)
    # an audio id in a text slot is dropped
    p = parse_answer([10, 64, 11], V)
    assert p.text_ids == [10, 11] and p.audio_ids == [] and "text slot" in p.issues[0]
    # a text id inside a span closes it
    p = parse_answer([AS, *g, 12, AS, *g, AE], V)
    assert p.text_ids == [12] and p.audio_ids == g + g
    assert [s.closed for s in p.segments if s.kind == "audio"] == [False, True]
    # missing end marker at the end
    p = parse_answer([10, AS, *g], V)
    assert p.audio_ids == g and not p.segments[-1].closed and "missing <audio_end>" in p.issues[0]
    # incomplete group: kept in the streams, dropped by aligned_audio
    p = parse_answer([AS, *g, 64, 65, 72, AE, EOT], V)
    assert p.linguistic_ids == g[:2] + [64, 65] and p.aligned_audio() == g and p.ended
    assert any("incomplete group" in i for i in p.issues)
    # stray markers, specials and out-of-range ids are dropped; reading stops at <|EOT|>
    p = parse_answer([AE, SP.bot, 999, -3, 10, AS, AS, *g, AE, EOT, 11, 0], V)
    assert p.text_ids == [10] and p.audio_ids == g and len(p.issues) == 6
    # LLSSS order broken
    p = parse_answer([AS, 72, 64, 73, 74, 65, AE], V)
    assert any("order broken" in i for i in p.issues)
    # not a sequence at all
    assert parse_answer(None, V).issues


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-5, 100), st.integers(), st.sampled_from([AS, AE, EOT, 0])), max_size=80))
def test_parser_never_crashes(ids):
    p = parse_answer(ids, V)
    assert len(p.linguistic_ids) + len(p.semantic_ids) == len(p.audio_ids)
    assert all(V.is_text(t) for t in p.text_ids)
    assert parse_answer(torch.tensor([i for i in ids if abs(i) < 2 ** 62], dtype=torch.long), V) is not None


def test_schedule_rejects_format_violations():
    f = FORMATS["ratio_10_15"]
    assert check_well_formed(text(11) + [AS] + audio(3) + [AE, EOT], f, V)          # 11 text > 10
    assert check_well_formed(text(10) + [AS] + audio(4) + [AE, EOT], f, V)          # 20 audio > 15
    assert check_well_formed(text(3) + [AS] + audio(1)[:4] + [AE, EOT], f, V)       # half a group
    assert check_well_formed(text(3) + [AS, 72], f, V, require_end=False)           # S where L is due
    assert check_well_formed(text(3) + [AS] + audio(1) + [AE], f, V) != []          # not finished
    assert check_well_formed(text(3) + [AS] + audio(1) + [AE], f, V, require_end=False) == []
    s = FormatSchedule(f)
    assert s.allowed() == {"text", "audio_start"}
    with pytest.raises(ValueError, match="not allowed"):
        s.step("linguistic")


# --------------------------------------------------------------------------- constrained generate
class BiasSpecials(LogitsProcessor):
    """Pushes the random model toward markers and <|EOT|> so that all states get visited."""

    def __init__(self, bias: float):
        self.bias = bias

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, [AS, AE, EOT]] += self.bias
        return scores


def random_model(seed: int) -> Step1ForCausalLM:
    torch.manual_seed(seed)
    cfg = Step1Config(vocab_size=V.size, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                      num_attention_groups=2, num_hidden_layers=2, max_seq_len=256, attention_kernel="eager",
                      initializer_range=0.5)                 # large init: peaky, varied logits
    return Step1ForCausalLM(cfg).eval()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), fmt=st.sampled_from(FORMAT_LIST), bias=st.sampled_from([0.0, 2.0, 4.0]))
def test_constrained_generation_is_always_well_formed(seed, fmt, bias):
    model = random_model(seed % 7)
    rows = [[SP.bos, SP.bot, 41, 9, AS, *audio(2), AE, EOT, SP.bot, 42, 9],
            [SP.bos, SP.bot, 41, 9, 12, 13, 14, EOT, SP.bot, 42, 9]]
    width = max(map(len, rows))
    prompt = torch.tensor([[SP.pad] * (width - len(r)) + r for r in rows])     # left padding
    mask = (prompt != SP.pad).long()
    proc = FormatLogitsProcessor(fmt, V, prompt_length=prompt.shape[1])
    torch.manual_seed(seed)
    out = model.generate(prompt, attention_mask=mask, max_new_tokens=60, do_sample=True, use_cache=True,
                         logits_processor=LogitsProcessorList([BiasSpecials(bias), proc]),
                         pad_token_id=SP.pad, eos_token_id=EOT)
    for row in out[:, prompt.shape[1]:].tolist():
        finished = EOT in row
        assert check_well_formed(row, fmt, V, require_end=finished) == [], (fmt.name, row)
        parsed = parse_answer(row, V)
        assert not [i for i in parsed.issues if "missing" not in i and "incomplete" not in i]
        if finished:
            assert parsed.issues == [] and parsed.audio_ids == parsed.aligned_audio()


def test_unconstrained_random_model_is_malformed_so_the_check_has_teeth():
    model = random_model(1)
    prompt = torch.tensor([[SP.bos, SP.bot, 41, 9, 12, EOT, SP.bot, 42, 9]])
    torch.manual_seed(0)
    out = model.generate(prompt, max_new_tokens=60, do_sample=True, pad_token_id=0, eos_token_id=EOT)
    assert check_well_formed(out[0, 9:], FORMATS["ratio_10_15"], V, require_end=False) != []


def test_processor_incremental_state_equals_recompute():
    f = FORMATS["ratio_3_5"]
    ans = interleave_answer(f, text(7), audio(3), V) + [EOT]
    prefix = torch.tensor([[SP.bot, 42, 9]])
    inc = FormatLogitsProcessor(f, V, prompt_length=3)
    scores = torch.zeros(1, V.size)
    ids = prefix
    for t in ans:
        a = inc(ids, scores)
        b = FormatLogitsProcessor(f, V, prompt_length=3)(ids, scores)   # fresh: from scratch
        assert torch.equal(a, b)
        assert a[0, t] == 0                                 # the true next id is allowed
        ids = torch.cat([ids, torch.tensor([[t]])], 1)
    # the mask, by kind: after "<|BOT|>assistant\n" only text or <audio_start>
    first = FormatLogitsProcessor(f, V, prompt_length=3)(prefix, scores)[0]
    allowed = set(torch.nonzero(first == 0).flatten().tolist())
    assert allowed == {AS} | set(range(7, 64))


def test_answer_cannot_end_in_the_middle_of_an_llsss_group():
    """10:7 closes its first round after 7 audio ids = 1 group + 2: <|EOT|> must wait."""
    from aqaa_ref.formats.constrained import END as K_END
    from aqaa_ref.formats.constrained import EOS as K_EOS
    from aqaa_ref.formats.constrained import LING, SEM, TEXT, FormatSchedule
    from aqaa_ref.formats.constrained import START as K_START
    s = FormatSchedule(Format.ratio(10, 7))
    for kind in [TEXT] * 10 + [K_START] + [LING, LING, SEM, SEM, SEM, LING, LING] + [K_END]:
        s.step(kind)
    assert s.phase == "text" and s.rounds == 1 and K_EOS not in s.allowed()
    s = FormatSchedule(Format.ratio(10, 15))
    for kind in [TEXT] * 10 + [K_START] + [LING, LING, SEM, SEM, SEM] * 3 + [K_END]:
        s.step(kind)
    assert K_EOS in s.allowed()
