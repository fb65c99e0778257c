"""aqaa_ref.audio: loading any audio to float32 mono, refusing bad input with one clear line."""
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from aqaa_ref.audio import (AudioError, duration, estimate_f0, load_audio, log_mel, median_f0, peak_normalize,
                            save_audio, trim_silence)


def tone(freq=220.0, seconds=0.5, sr=16_000, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_44k_int16_wav_becomes_mono_16k_float(tmp_path):
    x = tone(440, 1.0, 44_100)
    stereo = np.stack([x, 0.5 * x], axis=1)  # (T, 2)
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 44_100, subtype="PCM_16")
    wav = load_audio(path, sample_rate=16_000)
    assert wav.dtype == torch.float32 and wav.ndim == 1
    assert abs(wav.numel() - 16_000) <= 1
    # mono mix = mean of channels = 0.75 x, so the peak is about 0.375
    assert wav.abs().max().item() == pytest.approx(0.375, abs=0.01)


def test_flac_and_float_wav_roundtrip(tmp_path):
    x = tone(300, 0.3, 22_050)
    sf.write(tmp_path / "a.flac", x, 22_050)
    sf.write(tmp_path / "b.wav", x, 22_050, subtype="FLOAT")
    a = load_audio(tmp_path / "a.flac", sample_rate=22_050)
    b = load_audio(tmp_path / "b.wav", sample_rate=22_050)
    assert torch.allclose(a, torch.from_numpy(x), atol=1e-4)
    assert torch.equal(b, torch.from_numpy(x))


def test_int_arrays_are_scaled_and_channel_axis_is_found():
    x = (tone(200, 0.2, 8_000) * 32767).astype(np.int16)
    assert load_audio(x, 8_000, source_rate=8_000).abs().max() == pytest.approx(0.5, abs=1e-3)
    both = np.stack([x, x])  # (2, T) channels first
    assert load_audio(both, 8_000, source_rate=8_000).shape == (x.size,)
    assert load_audio(both.T, 8_000, source_rate=8_000).shape == (x.size,)
    u8 = np.full(100, 128, dtype=np.uint8)  # unsigned PCM silence
    assert load_audio(u8, 8_000, source_rate=8_000).abs().max() < 1e-6


def test_save_is_atomic_and_roundtrips(tmp_path):
    x = torch.from_numpy(tone(250, 0.25))
    path = save_audio(tmp_path / "x.wav", x, 16_000)
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]  # no temp file left behind
    assert torch.allclose(load_audio(path), x, atol=1 / 32768 + 1e-6)
    assert duration(x, 16_000) == pytest.approx(0.25)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.wav", "not found"),
    (lambda p: p / "t.wav" if (p / "t.wav").write_text("hello, not audio") else None, "not a readable audio file"),
    (lambda p: p, "directory"),
])
def test_bad_files_raise_one_line(tmp_path, make, message):
    with pytest.raises(AudioError, match=message) as e:
        load_audio(make(tmp_path))
    assert "\n" not in str(e.value)


def test_empty_nan_and_too_long_are_refused(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16_000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    bad = tone()
    bad[10] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        load_audio(bad, source_rate=16_000)
    with pytest.raises(AudioError, match="limit"):
        load_audio(np.zeros(16_000 * 3, np.float32), source_rate=16_000, max_seconds=2)
    with pytest.raises(AudioError, match="source_rate"):
        load_audio(tone())
    with pytest.raises(AudioError, match="1-D or 2-D"):
        load_audio(np.zeros((2, 2, 2)), source_rate=16_000)


def test_peak_normalize_matches_step_audio():
    x = torch.tensor([0.0, 0.25, -0.5])
    assert torch.allclose(peak_normalize(x), x / 0.5 * 0.999)
    quiet = torch.full((4,), 0.001)  # below the 0.01 floor: scaled by 1 / 0.01
    assert torch.allclose(peak_normalize(quiet), quiet / 0.01 * 0.999)


def test_log_mel_shape_and_f0_of_a_pure_tone():
    x = torch.from_numpy(tone(180, 1.0))
    mel = log_mel(x, 16_000)
    assert mel.shape == (80, 16_000 // 160 + 1)
    f0 = estimate_f0(x, 16_000)
    assert f0.numel() > 0 and (f0 > 0).float().mean() > 0.9
    assert median_f0(x, 16_000) == pytest.approx(180, rel=0.02)
    assert math.isnan(median_f0(torch.zeros(16_000), 16_000))


def test_trim_silence():
    x = torch.cat([torch.zeros(100), torch.ones(50) * 0.5, torch.zeros(30)])
    assert trim_silence(x).numel() == 50
    assert trim_silence(torch.zeros(10)).numel() == 0
