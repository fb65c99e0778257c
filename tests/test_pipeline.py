"""aqaa_ref.inference.pipeline + the CLI: answers, streaming, parity with batched generation, bad input.

The models are the ``tiny`` recipe's (trained in seconds, cached): they answer badly, but
every path from question audio to answer audio is the real one.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from aqaa_ref.__main__ import main
from aqaa_ref.audio import AudioError
from aqaa_ref.data.samples import load_samples
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.inference.generation import generate_answers
from aqaa_ref.inference.pipeline import AQAA, MAX_QUESTION_SECONDS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def aqaa():
    return AQAA.from_recipe("tiny", progress=False)


@pytest.fixture(scope="module")
def question():
    s = load_samples()[0]
    wav, sr = sf.read(s["path"], dtype="float32")
    return s["path"], torch.from_numpy(wav), sr


def test_answer_has_text_audio_and_consistent_lengths(aqaa, question):
    path, _, _ = question
    ans = aqaa.answer(path)
    parsed = parse_answer(ans.ids, aqaa.vocab, aqaa.special)
    G = len(parsed.aligned_audio()) // 5
    assert ans.wav.ndim == 1 and ans.wav.numel() == G * 1920          # 120 ms per LLSSS group
    assert isinstance(ans.text, str) and ans.ended == (ans.ids[-1] == aqaa.special.eot)
    assert set(ans.timings) == {"tokenize", "generate", "vocode", "total"}
    assert len(ans.question_ids) % 5 == 0 and aqaa.vocab.is_audio(torch.tensor(ans.question_ids)).all()


def test_answer_tokens_equal_batched_generate(aqaa, question):
    """The one-token-at-a-time KV-cached loop makes the same greedy choices as model.generate."""
    ans = aqaa.answer(question[0])
    prompt = aqaa.prompt(ans.question_ids, None, "text+audio")
    assert generate_answers(aqaa.model, aqaa.builder, [prompt], max_new_tokens=aqaa.max_new_tokens)[0] == ans.ids
    text = aqaa.answer(question[0], output="text")
    assert text.wav.numel() == 0 and not aqaa.vocab.is_audio(torch.tensor(text.ids)).any()
    prompt = aqaa.prompt(ans.question_ids, None, "text")
    assert generate_answers(aqaa.model, aqaa.builder, [prompt], output="text")[0] == text.ids


def test_instruction_changes_the_prompt(aqaa, question):
    q = aqaa.answer(question[0]).question_ids
    plain, slow = aqaa.prompt(q, None, "text+audio"), aqaa.prompt(q, "answer slowly", "text+audio")
    assert len(slow) > len(plain) and slow[-len(q) - 10:] != plain[:10]
    assert aqaa.answer(question[0], instruction="answer slowly").wav.ndim == 1


def test_stream_gives_the_same_tokens_and_audio_before_generation_ends(aqaa, question, monkeypatch):
    path = question[0]
    offline = aqaa.answer(path)
    made = []                                             # tokens generated so far, seen from the stream
    real_tokens = aqaa.tokens

    def counting(prompt, output="text+audio"):
        for t in real_tokens(prompt, output):
            made.append(t)
            yield t
    monkeypatch.setattr(aqaa, "tokens", counting)
    first_audio_at = None
    events = []
    for ev in aqaa.stream(path, chunk_groups=1):
        events.append(ev)
        if ev.kind == "audio" and first_audio_at is None:
            first_audio_at = len(made)
    assert made == offline.ids
    assert first_audio_at is not None and first_audio_at < len(offline.ids)   # audio before the last token
    assert "".join(e.text for e in events if e.kind == "text") == offline.text
    assert sum(e.wav.numel() for e in events if e.kind == "audio") == offline.wav.numel()


def test_stream_events_carry_the_ids_generated_so_far(aqaa, question):
    """Event.ids: a growing prefix of the answer; the last event's ids are the offline answer's."""
    offline = aqaa.answer(question[0])
    events = list(aqaa.stream(question[0], chunk_groups=1))
    assert events and events[-1].ids == tuple(offline.ids)
    for before, after in zip(events, events[1:]):
        assert after.ids[:len(before.ids)] == before.ids                  # each a prefix of the next
    audio = [e for e in events if e.kind == "audio"]
    assert len(audio[0].ids) < len(offline.ids)                           # the first piece came early
    n_audio = sum(aqaa.vocab.is_audio(torch.tensor(t)).item() for t in audio[0].ids)
    assert n_audio >= 5                                                    # ... after one whole LLSSS group


def test_any_sample_rate_and_stereo_are_accepted(aqaa, question):
    _, wav, sr = question
    base = aqaa.load_question(wav, sr)
    stereo = aqaa.load_question(torch.stack([wav, wav]), sr)
    assert torch.allclose(base, stereo)
    for rate in (8000, 22050, 44100):
        n = int(wav.numel() * rate / sr)
        resampled = np.interp(np.linspace(0, wav.numel() - 1, n), np.arange(wav.numel()), wav.numpy())
        q = aqaa.load_question(resampled.astype(np.float32), rate)
        assert abs(q.numel() - base.numel()) <= 16_000 // 100                 # within 10 ms


@pytest.mark.parametrize("case", ["missing", "not_audio", "empty", "silence", "too_long", "array_no_rate",
                                  "wrong_type", "too_short"])
def test_bad_questions_raise_one_line_audio_errors(aqaa, tmp_path, case):
    sr = 16_000
    arg, rate = {
        "missing": (tmp_path / "nope.wav", None),
        "not_audio": (_write(tmp_path / "x.wav", b"this is text, not a RIFF file"), None),
        "empty": (np.zeros(0, np.float32), sr),
        "silence": (np.zeros(2 * sr, np.float32), sr),
        "too_long": (0.1 * np.random.default_rng(0).standard_normal(int((MAX_QUESTION_SECONDS + 1) * sr))
                     .astype(np.float32), sr),
        "array_no_rate": (np.ones(sr, np.float32), None),
        "wrong_type": (12345, None),
        "too_short": (0.5 * np.ones(sr // 100, np.float32), sr),
    }[case]
    with pytest.raises(AudioError) as e:
        aqaa.answer(arg, rate)
    msg = str(e.value)
    assert msg and "\n" not in msg


def test_bad_output_and_instruction_are_refused(aqaa, question):
    with pytest.raises(ValueError, match="output must be one of"):
        aqaa.answer(question[0], output="video")
    with pytest.raises(ValueError, match="instruction must be a string"):
        aqaa.answer(question[0], instruction=3)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- the CLI

@pytest.mark.parametrize("case", ["missing", "not_audio", "silence", "too_long"])
def test_cli_answer_bad_input_exits_2_with_one_line(tmp_path, capsys, case):
    sr = 16_000
    path = tmp_path / "q.wav"
    if case == "not_audio":
        path.write_text("hello")
    elif case == "silence":
        sf.write(path, np.zeros(sr, np.float32), sr)
    elif case == "too_long":
        sf.write(path, 0.1 * np.ones(int((MAX_QUESTION_SECONDS + 2) * sr), np.float32), sr)
    code = main(["answer", str(path), "--preset", "tiny", "--quiet", "--out", str(tmp_path / "a.wav")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "\n" not in err and "Traceback" not in err


def test_cli_answer_writes_audio_and_prints_text(tmp_path):
    """A real process: exit 0, the text channel on stdout, a WAV on disk."""
    q = load_samples()[0]["path"]
    out = tmp_path / "a.wav"
    r = subprocess.run([sys.executable, "-m", "aqaa_ref", "answer", q, "--out", str(out), "--preset", "tiny",
                        "--quiet"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr
    wav, sr = sf.read(out)
    assert sr == 16_000 and wav.ndim == 1 and len(wav) % 1920 == 0 and len(wav) > 0
    r = subprocess.run([sys.executable, "-m", "aqaa_ref", "answer", str(tmp_path / "missing.wav"), "--preset", "tiny"],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0


def test_answer_prompts_batched_equals_one_by_one(aqaa):
    paths = [s["path"] for s in load_samples()[:3]]
    singles = [aqaa.answer(p) for p in paths]
    prompts = [aqaa.prompt(a.question_ids, None, "text+audio") for a in singles]
    batched = aqaa.answer_prompts(prompts, batch_size=2)
    for one, many in zip(singles, batched):
        assert many.ids == one.ids and many.text == one.text and many.question_ids == one.question_ids
        assert torch.allclose(many.wav, one.wav, atol=1e-5)


def test_cli_eval_prints_the_tables(tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["eval", "--preset", "tiny", "--limit", "4", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "condition" in text and "family" in text and "correct" in text and out.exists()
    assert "understood" not in text
    assert main(["eval", "--preset", "tiny", "--limit", "4", "--quiet", "--waterfall"]) == 0
    text = capsys.readouterr().out
    assert "where the answers are lost" in text and text.count("understood    tokens_right     heard_right") == 2


def test_cli_demo_writes_a_spoken_answer_per_shipped_question(tmp_path, capsys):
    out = tmp_path / "answers"
    assert main(["demo", "--preset", "tiny", "--quiet", "--out", str(out)]) == 0
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == len(load_samples()) and all(sf.info(w).samplerate == 16_000 for w in wavs)
    report = capsys.readouterr().out
    assert "text channel correct:" in report and "heard as the correct answer" in report
