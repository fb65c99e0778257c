"""aqaa_ref.vocoder: OT-CFM math, Euler + guidance, U-Net shapes, lengths, streaming, save/load, errors.

Token streams here come from ``StandInTokenizer`` below: a STAND-IN for tests only (the
mean log-mel level at 60 ms / 40 ms quantised into bins), not the project's tokenizer.
"""
import math

import pytest
import torch

from aqaa_ref.audio import MelConfig, log_mel
from aqaa_ref.data import CorpusConfig, build_corpus
from aqaa_ref.formats.id_layout import AudioVocab
from aqaa_ref.vocoder import (FlowVocoder, GriffinLim, ISTFTVocoder, Mel2WavConfig, StreamDecoder, UNet1D, UNetConfig,
                              Vocoder, VocoderConfig, check_codes, cosine_warp, euler_sample, frame_noise,
                              guided_velocity, interleave_codes, load_vocoder, mel_frames, save_vocoder,
                              to_vocoder_codes, train_mel2wav, train_vocoder)
from aqaa_ref.vocoder.flow import cfm_interpolant, cfm_target, time_grid
from aqaa_ref.vocoder.mel2wav import load_mel2wav, save_mel2wav
from aqaa_ref.vocoder.train import EMA, vocoder_dir
from aqaa_ref.cache import _jsonable
from aqaa_ref.vocoder.token_encoder import TokenEncoder, length_regulate

N_L, N_S = 8, 12
TINY = VocoderConfig.from_preset("tiny")


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py: 1 torch thread (small models)


class StandInTokenizer:
    """STAND-IN (tests only): loudness bins at 16.67 Hz and 25 Hz."""
    n_linguistic, n_semantic = N_L, N_S

    def encode(self, wav, sample_rate):
        level = log_mel(wav, sample_rate, MelConfig()).mean(0)            # (F,) at 10 ms

        def bins(frames, n):
            k = level.numel() // frames
            x = level[: k * frames].view(k, frames).mean(1)
            return ((x + 11.5) / 13 * n).long().clamp(0, n - 1)
        return bins(6, N_L), bins(4, N_S)


def random_codes(G, seed=0):
    g = torch.Generator().manual_seed(seed)
    return interleave_codes(torch.randint(0, N_L, (2 * G,), generator=g), torch.randint(0, N_S, (3 * G,), generator=g), N_L)


@pytest.fixture(scope="module")
def flow():
    torch.manual_seed(0)
    return FlowVocoder(TINY, N_L, N_S).eval()


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(CorpusConfig.from_preset("tiny"), progress=False)   # the shared cached tiny corpus


# ----------------------------------------------------------------------------- CFM math

def test_cfm_interpolant_and_target_by_hand():
    z, x1, t, s = torch.tensor([2.0]), torch.tensor([-1.0]), torch.tensor(0.25), 0.1
    # x_t = (1 - (1 - 0.1) 0.25) 2 + 0.25 (-1) = 0.775 * 2 - 0.25 = 1.3 ;  u = -1 - 0.9 * 2 = -2.8
    assert cfm_interpolant(z, x1, t, s).item() == pytest.approx(1.3)
    assert cfm_target(z, x1, s).item() == pytest.approx(-2.8)
    # the ends: t = 0 is the noise, t = 1 is x1 + sigma_min z
    assert cfm_interpolant(z, x1, torch.tensor(0.0), s).item() == pytest.approx(2.0)
    assert cfm_interpolant(z, x1, torch.tensor(1.0), s).item() == pytest.approx(-1.0 + 0.1 * 2.0)


def test_cosine_warp_and_grid():
    assert cosine_warp(torch.tensor([0.0, 0.5, 1.0])).tolist() == pytest.approx([0.0, 1 - math.cos(math.pi / 4), 1.0])
    assert time_grid(4).tolist() == pytest.approx([1 - math.cos(k / 4 * math.pi / 2) for k in range(5)])


def test_euler_is_exact_on_constant_and_ot_fields():
    z = torch.randn(2, 3, 5)
    c = torch.randn(2, 3, 5)
    for n in (1, 2, 10, 32):
        assert torch.allclose(euler_sample(lambda x, t: c, z, n), z + c, atol=1e-5)
    # the conditional OT field of one target x1: straight lines, so Euler lands on x1 (+ sigma z) exactly
    x1, s = torch.randn(2, 3, 5), 1e-6

    def ot_field(x, t):
        z_hat = (x - t * x1) / (1 - (1 - s) * t)          # invert x_t for the noise it came from
        return x1 - (1 - s) * z_hat
    for n in (1, 3, 10):
        assert torch.allclose(euler_sample(ot_field, z, n), x1 + s * z, atol=1e-4)


def test_guidance_formula_and_wiring(flow):
    vc, vu = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    assert guided_velocity(vc, vu, 0.7).tolist() == pytest.approx([1.7 * 1 - 0.7 * 0.5, 1.7 * 2 + 0.7 * 1])
    assert torch.equal(guided_velocity(vc, vu, 0.0), vc)

    class MuIsVelocity(torch.nn.Module):              # v(x, t | mu) = mu, so v_uncond = 0
        def forward(self, x, mu, t, mask):
            return mu
    model = FlowVocoder(TINY, N_L, N_S).eval()
    model.estimator = MuIsVelocity()
    codes = random_codes(3)
    mu = model.encoder(codes[None], [3])[0]
    z = frame_noise(0, 0, 3, 80, 12)
    for w in (0.0, 0.7, 1.5):
        x = model.sample(codes, n_steps=4, guidance=w, noise=z)       # = z + (1 + w) mu  (mean 0, std 1)
        assert torch.allclose(x, z + (1 + w) * mu, atol=1e-4)


# ----------------------------------------------------------------------------- shapes and lengths

@pytest.mark.parametrize("frames", [1, 2, 7, 13, 25])
def test_unet_shapes_at_odd_lengths(frames):
    net = UNet1D(UNetConfig(channels=(16, 24, 32), n_mid=1, n_heads=2, time_dim=16, groups=4))
    x = torch.randn(2, 80, frames)
    mask = torch.ones(2, 1, frames)
    mask[1, :, frames // 2 + 1:] = 0
    v = net(x, torch.randn_like(x), torch.rand(2), mask)
    assert v.shape == (2, 80, frames)
    assert torch.all(v[1, :, frames // 2 + 1:] == 0)                # padded frames stay zero


def test_padding_does_not_leak():
    enc = TokenEncoder(N_L + N_S, 80, 16, 1, 2, 12).eval()
    a, b = random_codes(2, 1), random_codes(4, 2)
    batch = torch.stack([torch.cat([a, torch.zeros(10, dtype=torch.long)]), b])
    out = enc(batch, [2, 4])
    assert torch.allclose(out[0, :, :24], enc(a[None], [2])[0], atol=1e-5)
    assert torch.all(out[0, :, 24:] == 0)
    h = torch.randn(1, 3, 10)
    assert torch.allclose(length_regulate(h, [2], 12), torch.nn.functional.interpolate(h, size=24, mode="linear"))


@pytest.mark.parametrize("G", [1, 3, 7])
def test_mel_and_audio_length_match_token_duration(flow, G):
    codes = random_codes(G)
    voc = Vocoder(flow, GriffinLim(n_iter=2))
    assert voc.tokens_to_mel(codes, n_steps=2).shape == (80, 12 * G)         # 12 frames per 120 ms group
    assert voc.decode(codes, n_steps=2).shape == (G * 1920,)                 # 120 ms at 16 kHz
    # an incomplete tail group is dropped (Step-Audio's rule)
    assert voc.decode(codes.tolist() + [0, 1, N_L], n_steps=2).shape == (G * 1920,)


def test_interleave_layout_and_vocab_ids():
    codes = interleave_codes([1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6], N_L)
    assert codes.tolist() == [1, 2, 8, 9, 10, 3, 4, 11, 12, 13]            # G = min(5 // 2, 7 // 3) = 2
    vocab = AudioVocab(100, N_L, N_S)
    assert to_vocoder_codes([100 + 1, 100 + 8 + 3], vocab).tolist() == [1, 11]
    with pytest.raises(ValueError):
        to_vocoder_codes([5], vocab)


def test_bad_codes_raise_one_line_error(flow):
    voc = Vocoder(flow, GriffinLim(n_iter=1))
    for bad in ([0, 1, 8, 9, N_L + N_S], [0, 1, 8, 9, -1]):
        with pytest.raises(ValueError, match="out of range") as e:
            voc.decode(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="LLSSS") as e:
        check_codes([0, 9, 8, 9, 10], N_L, N_S)                         # a semantic code in slot 1
    assert "\n" not in str(e.value)


def test_empty_tokens_give_empty_audio(flow):
    voc = Vocoder(flow, GriffinLim(n_iter=1))
    assert voc.decode([]).shape == (0,)
    assert voc.decode([0, 1, 8]).shape == (0,)                          # less than one group
    assert list(voc.stream([])) == []


# ----------------------------------------------------------------------------- determinism, streaming

def test_sampling_is_deterministic_under_a_seed(flow):
    codes = random_codes(4)
    voc = Vocoder(flow, GriffinLim(n_iter=2))
    a, b = voc.decode(codes, n_steps=3, seed=5), voc.decode(codes, n_steps=3, seed=5)
    assert torch.equal(a, b)
    assert not torch.equal(a, voc.decode(codes, n_steps=3, seed=6))


def test_stream_matches_offline_length_and_exactly_with_full_context(flow):
    voc = Vocoder(flow, GriffinLim(n_iter=2))
    codes = random_codes(7)
    offline = voc.decode(codes, n_steps=2)
    pieces = list(voc.stream(codes, chunk_groups=3, context_groups=2, n_steps=2))
    assert len(pieces) == 3 and sum(p.numel() for p in pieces) == offline.numel()
    one = list(voc.stream(codes, chunk_groups=7, n_steps=2))              # a single chunk = offline
    assert len(one) == 1 and torch.allclose(one[0], offline, atol=1e-6)


def test_stream_yields_each_piece_as_soon_as_its_chunk_is_decoded(flow, monkeypatch):
    """Vocoder.stream is lazy: the first piece comes after one flow call, not after all of them."""
    voc = Vocoder(flow, GriffinLim(n_iter=2))
    codes = random_codes(7)
    expected = list(voc.stream(codes, chunk_groups=3, context_groups=2, n_steps=2))
    calls, real = [], flow.sample
    monkeypatch.setattr(flow, "sample", lambda *a, **k: calls.append(1) or real(*a, **k))
    stream = voc.stream(codes, chunk_groups=3, context_groups=2, n_steps=2)
    first = next(stream)
    assert len(calls) == 1 and torch.equal(first, expected[0])
    rest = list(stream)
    assert len(calls) == 3 and all(torch.equal(a, b) for a, b in zip([first, *rest], expected))


@pytest.mark.parametrize("sizes", [[1] * 35, [7, 3, 11, 14], [35]])
def test_stream_decoder_fed_as_tokens_arrive_equals_the_offline_stream(flow, sizes):
    """Pushing codes in any pieces (one token at a time included) gives the same audio."""
    voc = Vocoder(flow, GriffinLim(n_iter=2))
    codes = random_codes(7)                                   # 35 codes
    offline = torch.cat(list(voc.stream(codes, chunk_groups=3, context_groups=2, n_steps=2)))
    dec, pieces, k = StreamDecoder(voc, chunk_groups=3, context_groups=2, n_steps=2), [], 0
    for n in sizes:
        pieces += dec.push(codes[k:k + n])
        k += n
    early = sum(p.numel() for p in pieces)
    pieces += dec.finish()
    assert torch.allclose(torch.cat(pieces), offline, atol=1e-6)
    assert early > 0                                           # audio came out before the end was known
    assert dec.finish() == []


def test_training_is_deterministic_and_save_load_round_trips(corpus, tmp_path):
    tok = StandInTokenizer()
    cfg = VocoderConfig.from_preset("tiny", steps=3)
    a = train_vocoder(corpus, tok, cfg, progress=False)
    b = train_vocoder(corpus, tok, cfg, progress=False)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.allclose(a.mel_mean, torch.zeros_like(a.mel_mean))      # statistics were set
    save_vocoder(a, tmp_path)
    c = load_vocoder(tmp_path)
    codes = random_codes(2)
    assert torch.equal(a.sample(codes, 2), c.sample(codes, 2))
    assert c.cfg == a.cfg


def test_ema_follows_its_formula_with_warmup():
    lin = torch.nn.Linear(2, 1)
    ema = EMA(lin, decay=0.9)
    w0 = lin.weight.detach().clone()
    expect = w0.clone()
    for t in range(30):
        with torch.no_grad():
            lin.weight.add_(1.0)
        ema.update(lin)
        d = min(0.9, (1 + t) / (10 + t))                      # 0.1, 0.18, ... then 0.9
        expect = d * expect + (1 - d) * lin.weight.detach()
    assert torch.allclose(ema.avg["weight"], expect)
    assert (ema.avg["weight"] < lin.weight).all()              # the average lags the climbing weights
    ema.copy_to(lin)
    assert torch.allclose(lin.weight, expect)


def test_ema_training_saves_the_average_and_stays_out_of_old_cache_keys(corpus):
    tok = StandInTokenizer()
    plain = train_vocoder(corpus, tok, VocoderConfig.from_preset("tiny", steps=6), progress=False)
    avg = train_vocoder(corpus, tok, VocoderConfig.from_preset("tiny", steps=6, ema_decay=0.99), progress=False)
    moved = [k for k, v in plain.state_dict().items() if not torch.equal(v, avg.state_dict()[k])]
    assert len(moved) > len(plain.state_dict()) // 2            # the saved weights are the average
    assert torch.equal(plain.mel_mean, avg.mel_mean)            # buffers are statistics, not averaged away
    assert "ema_decay" not in _jsonable(VocoderConfig.from_preset("tiny"))      # off: the keys of cached models hold
    assert vocoder_dir(corpus, tok, VocoderConfig.from_preset("tiny")) != vocoder_dir(
        corpus, tok, VocoderConfig.from_preset("tiny", ema_decay=0.99))
    with pytest.raises(ValueError, match="ema_decay"):
        VocoderConfig(ema_decay=1.0)


# ----------------------------------------------------------------------------- mel -> wave

def test_mel_frames_and_mel2wav_lengths():
    wav = torch.randn(16_000)
    mel = mel_frames(wav)
    assert mel.shape == (80, 100)
    assert GriffinLim(n_iter=2)(mel).shape == (16_000,)
    voc = ISTFTVocoder(Mel2WavConfig.from_preset("tiny")).eval()
    with torch.no_grad():
        assert voc(mel).shape == (16_000,) and voc(mel[None]).shape == (1, 16_000)
        assert voc(mel[:, :0]).shape == (0,)


def test_griffin_lim_keeps_the_pitch_of_a_tone():
    t = torch.arange(16_000) / 16_000
    wav = 0.5 * torch.sin(2 * math.pi * 220 * t)
    y = GriffinLim()(mel_frames(wav))
    spec = torch.fft.rfft(y[4000:12000]).abs()
    assert abs(spec.argmax().item() * 2 - 220) <= 8                      # 2 Hz per bin on 8,000 samples


def test_mel2wav_training_and_save_load(corpus, tmp_path):
    cfg = Mel2WavConfig.from_preset("tiny", steps=3)
    a = train_mel2wav(corpus, cfg, progress=False)
    assert a.train_info["n_params"] > 0 and math.isfinite(a.train_info["final_loss"])
    save_mel2wav(a, tmp_path)
    b = load_mel2wav(tmp_path)
    mel = mel_frames(torch.randn(3200))
    with torch.no_grad():
        assert torch.equal(a(mel), b(mel))


def test_istft_synthesis_inverts_a_true_stft_and_gl_keeps_it():
    voc = ISTFTVocoder(Mel2WavConfig.from_preset("tiny"))
    y = torch.randn(1, 40 * 160)
    spec = torch.stft(y, 640, 160, 640, voc.window, center=True, return_complex=True)[..., :-1]   # (1, 321, 40)
    log_mag, phase = spec.abs().clamp(min=1e-8).log(), spec.angle()
    exact = voc.synthesize(log_mag, phase)
    # the last 2 hops lack their next frame (repeated instead), so compare the rest
    assert torch.allclose(exact[:, :-320], y[:, :-320], atol=1e-4)
    # a consistent spectrogram is a fixed point of Griffin-Lim: away from the (inconsistent) repeated
    # last frame one iteration changes nothing, and eight change little
    one = voc.synthesize(log_mag, phase, gl_iters=1)
    assert (one - exact)[:, 640:-640].abs().max() < 1e-3
    eight = voc.synthesize(log_mag, phase, gl_iters=8)
    assert (eight - exact).abs().mean() < 0.1 * y.abs().mean()


def test_temperature_scales_the_starting_noise(flow):
    codes = torch.as_tensor(random_codes(3))
    G = codes.numel() // 5
    z = frame_noise(0, 0, G, flow.cfg.mel.n_mels, flow.cfg.frames_per_group)
    with torch.no_grad():
        a = flow.sample(codes, 2, 0.0, temperature=0.5)
        b = flow.sample(codes, 2, 0.0, noise=z * 0.5, temperature=1.0)
        c = flow.sample(codes, 2, 0.0, temperature=1.0)
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, c)


def test_a_smaller_first_chunk_starts_audio_sooner_and_keeps_the_length(flow):
    voc = Vocoder(flow, GriffinLim(n_iter=2))
    codes = random_codes(7)
    dec = StreamDecoder(voc, chunk_groups=3, context_groups=2, n_steps=2, first_chunk_groups=1)
    early = dec.push(codes[:5])                                   # one whole group is enough
    assert len(early) == 1 and early[0].numel() > 0
    rest = dec.push(codes[5:]) + dec.finish()
    assert sum(p.numel() for p in early + rest) == voc.decode(codes, n_steps=2).numel()
