"""aqaa_ref.data.espeak: deterministic, controllable, multilingual synthesis."""
import numpy as np
import pytest
import torch

from aqaa_ref.audio import median_f0
from aqaa_ref.data import LANGUAGES, SynthesisError, synthesize, synthesize_many


def test_identical_inputs_give_identical_samples():
    a, sr, pa = synthesize("what is three plus four", "en", "m1", rate=170, pitch=40)
    synthesize("something else in between", "en", "f3", rate=300)  # must not leak state
    b, _, pb = synthesize("what is three plus four", "en", "m1", rate=170, pitch=40)
    assert sr == 22_050 and a.dtype == np.float32
    assert np.array_equal(a, b) and pa == pb


def test_duration_falls_as_rate_rises():
    lengths = [synthesize("the quick brown fox jumps over the lazy dog", rate=r)[0].size for r in (100, 175, 300)]
    assert lengths[0] > lengths[1] > lengths[2]
    assert lengths[0] / lengths[2] > 2.0


def test_measured_f0_rises_with_pitch():
    f0 = []
    for p in (10, 50, 90):
        wav, sr, _ = synthesize("what comes after seven", "en", "m1", pitch=p)
        f0.append(median_f0(torch.from_numpy(wav), sr))
    assert f0[0] < f0[1] < f0[2]
    assert f0[2] / f0[0] > 1.4


def test_female_voices_are_higher_than_male():
    male = median_f0(torch.from_numpy(synthesize("hello there", voice="m1")[0]), 22_050)
    female = median_f0(torch.from_numpy(synthesize("hello there", voice="f2")[0]), 22_050)
    assert female > 1.4 * male


@pytest.mark.parametrize("language, text", [("en", "what is two plus two"), ("cmn", "二加二等于几"),
                                            ("yue", "二加二係幾多"), ("ja", "にたすには")])
def test_every_language_yields_audio_and_phonemes(language, text):
    assert language in LANGUAGES
    wav, sr, phonemes = synthesize(text, language, "f1")
    assert wav.size > 0.3 * sr and np.abs(wav).max() > 0.05
    assert len(phonemes.split()) >= 4


def test_bad_requests_are_refused():
    with pytest.raises(SynthesisError, match="unknown language"):
        synthesize("hi", language="xx")
    with pytest.raises(SynthesisError, match="unknown voice"):
        synthesize("hi", voice="zz9")
    with pytest.raises(SynthesisError, match="empty"):
        synthesize("   ")
    with pytest.raises(SynthesisError, match="rate"):
        synthesize("hi", rate=5)


def test_parallel_synthesis_in_processes_matches_serial():
    reqs = [dict(text=f"number {i}", voice="m2", rate=150 + 10 * i) for i in range(6)]
    serial = [w for w, _, _ in synthesize_many(reqs, workers=1)]
    parallel = [w for w, _, _ in synthesize_many(reqs, workers=2, chunksize=2)]
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel))


def test_breathy_voices_give_the_same_samples_in_every_process():
    """f2, f3 and f5 add breath noise; its generator is seeded at every load, so two processes
    (another address space, another clock) give the same samples (they did not before)."""
    import subprocess
    import sys

    code = ("import hashlib\n"
            "from aqaa_ref.data import synthesize\n"
            "print(' '.join(hashlib.md5(synthesize('what is three plus four', 'en', v, 160, 40)[0].tobytes())"
            ".hexdigest() for v in ('f2', 'f3', 'f5')))\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout.split()) == 3
