# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · The flow-matching token vocoder: audio tokens → mel → waveform
#
# **What the paper does.** Step-Audio-AQAA answers with audio *tokens*; a vocoder turns them
# into sound, and the paper stresses that the answer is only as good as that step. The
# vocoder is CosyVoice's: the 2:3 interleaved token stream is embedded, encoded by a small
# Transformer, projected to 80 mel bins and stretched to the mel frame rate (**mu**); a 1-D
# **U-Net** of ResNet and Transformer blocks then learns a velocity field that carries
# Gaussian noise to the mel spectrogram, trained by **optimal-transport conditional flow
# matching** (OT-CFM, sigma_min 1e-6, cosine time warp, conditions dropped with p = 0.2),
# sampled with **10 Euler steps** and **classifier-free guidance 0.7**; a HiFi-GAN-type
# vocoder makes the waveform (facts §5).
#
# **What this notebook does.** (1) Flow matching on 2-D points in a few lines, then the
# library's sampler on the same field. (2) The U-Net. (3) The trained toy models
# (`aqaa_ref.vocoder`, `aqaa_ref.evaluation.recognizer`): trajectories from noise to a mel, the
# resynthesis of held-out speech beside the original (playable), steps and guidance
# (sliders), and streaming. Numbers for the whole test sample are in
# `benchmarks/bench_vocoder.py` (`benchmarks/results/vocoder_toy.json`).
#
# The trained models are the toy ones **shipped in `checkpoints/toy/`** (dual tokenizer, flow
# vocoder, mel-to-wave model, recognizer), trained by this code (`python -m aqaa_ref train
# --preset toy`; the flow vocoder alone took 43 minutes on a 2-core CPU); section 1's
# two-dimensional flow trains live. **Run time** (2-core CPU, measured): about 3 minutes with the
# toy corpus cached (notebook 04 builds it; about a minute more the first time).
# `AQAA_QUICK=1` (CI) trains the 2-D flow for fewer steps: the same code path.

# %%
import os, math, time
import torch
import torch.nn as nn
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from aqaa_ref.audio import median_f0, peak_normalize
from aqaa_ref.data import build_corpus, CorpusConfig, phoneme_tokens
from aqaa_ref.vocoder import (Vocoder, VocoderConfig, GriffinLim, UNet1D, euler_sample, guided_velocity,
                              interleave_codes, mel_frames, codebook_sizes)
from aqaa_ref.vocoder.flow import cfm_interpolant, cfm_target, time_grid
from aqaa_ref.evaluation.recognizer import per

QUICK = os.environ.get("AQAA_QUICK") == "1"   # CI: a shorter 2-D warm-up
from aqaa_ref import checkpoints
SHIPPED = checkpoints.default_folder("toy")   # checkpoints/toy in this repository
# the 2 cores are usually shared with other jobs; one thread avoids oversubscription
# (measured under load: real-time factor 0.33 with 1 thread, 2.1 with 2)
torch.set_num_threads(1)
print("quick mode" if QUICK else "full mode", "| torch threads:", torch.get_num_threads())

# %% [markdown]
# ## 1. Flow matching in a few lines
#
# Data x1: points on a ring of 8 Gaussians. Noise z ~ N(0, I). The OT path is the straight
# line x_t = (1 − (1 − σ) t) z + t x1 and its velocity u = x1 − (1 − σ) z is constant. A small
# MLP v(x, t) learns E[u | x_t, t] by regression; integrating dx/dt = v from t = 0 to 1
# moves noise onto the data.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
SIGMA = 1e-6

def ring(n):                                   # x1: 8 Gaussians on a circle of radius 2
    k = torch.randint(0, 8, (n,))
    centres = 2 * torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1)
    return centres + 0.15 * torch.randn(n, 2)

field = nn.Sequential(nn.Linear(3, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2))
v = lambda x, t: field(torch.cat([x, t.expand(x.shape[0], 1)], 1))
opt = torch.optim.Adam(field.parameters(), 3e-3)
for step in range(150 if QUICK else 2000):
    x1, z, t = ring(256), torch.randn(256, 2), torch.rand(256, 1)
    x_t = (1 - (1 - SIGMA) * t) * z + t * x1          # the OT interpolant
    u = x1 - (1 - SIGMA) * z                           # its velocity
    loss = ((field(torch.cat([x_t, t], 1)) - u) ** 2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
print("parameters:", sum(p.numel() for p in field.parameters()))

# %%
print(f"final loss {loss.item():.3f}  (it cannot reach 0: u depends on z, which x_t does not pin down)")

# %% [markdown]
# Sampling, inline: Euler steps x ← x + Δt · v(x, t) on a uniform grid. The library's
# `euler_sample` does the same (on its cosine-warped grid by default; `warp=False` gives the
# uniform grid), so the two must agree exactly:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(1)
z = torch.randn(1000, 2)
with torch.no_grad():
    x, path = z.clone(), [z]
    for k in range(20):                                # inline Euler, 20 uniform steps
        t = torch.tensor([[k / 20]])
        x = x + (1 / 20) * v(x, t)
        path.append(x)
    lib = euler_sample(lambda x, t: v(x, t.view(1, 1)), z, n_steps=20, warp=False)
print("library euler_sample == inline loop:", torch.allclose(lib, x, atol=1e-5))
print("samples:", tuple(x.shape), "| trajectory points per sample:", len(path))

# %%
path_t = torch.stack(path)                             # (21, 1000, 2)
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
axes[0].scatter(*z.T, s=3, c="gray"); axes[0].set_title("noise z (t = 0)")
for i in range(150):
    axes[1].plot(path_t[:, i, 0], path_t[:, i, 1], lw=0.6, alpha=0.6)
axes[1].set_title("Euler trajectories (150 of them)")
axes[2].scatter(*x.T, s=3, c="C1", label="samples (t = 1)")
axes[2].scatter(*ring(1000).T, s=3, c="C0", alpha=0.3, label="data")
axes[2].legend(loc="upper right", fontsize=8); axes[2].set_title("samples vs data")
for a in axes: a.set_aspect("equal"); a.set_xlim(-3.5, 3.5); a.set_ylim(-3.5, 3.5)
plt.tight_layout(); plt.show()

# %% [markdown]
# ### The pieces the vocoder adds
#
# * **Cosine time warp** t ← 1 − cos(tπ/2): training times and sampling grid both crowd near
#   t = 0, where the field is hardest (pure noise, every target possible).
# * **Classifier-free guidance**: training drops the condition (mu ← 0) for 20 % of the
#   examples, so one network knows v(x, t | mu) and v(x, t | ∅); sampling uses
#   v = (1 + w) v_cond − w v_uncond, w = 0.7 (Step-Audio: 1.7 v_cond − 0.7 v_uncond).
# * The library's formulas, checked by hand:

# %%
# NBVAL_CHECK_OUTPUT
print("10-step grid:", [round(t, 3) for t in time_grid(10).tolist()])
z0, x1, t = torch.tensor([2.0]), torch.tensor([-1.0]), torch.tensor(0.25)
print("x_t  library", round(cfm_interpolant(z0, x1, t, 0.1).item(), 4), "| by hand", (1 - 0.9 * 0.25) * 2 + 0.25 * -1)
print("u    library", round(cfm_target(z0, x1, 0.1).item(), 4), "| by hand", -1 - 0.9 * 2)
print("guidance w=0.7 on v_cond=1, v_uncond=0.5:", round(guided_velocity(torch.tensor(1.0), torch.tensor(0.5), 0.7).item(), 4),
      "| by hand", 1.7 * 1 - 0.7 * 0.5)

# %% [markdown]
# ## 2. The estimator: a 1-D U-Net
#
# Input concat(x_t, mu) (2 × 80 channels, plus an optional speaker-prompt mel, off by
# default). The time t goes through a sinusoidal embedding and an MLP and is added inside
# every ResNet block. Down level: ResNet1D → Transformer → (skip) → stride-2 conv; mid
# blocks at half rate; up level: transposed conv → concat skip → ResNet1D → Transformer;
# then a 1 × 1 conv to 80 bins. Any length works (down-sampling rounds up; up-sampling is
# cropped back to the skip):

# %%
# NBVAL_CHECK_OUTPUT
toy = VocoderConfig.from_preset("toy")
torch.manual_seed(0)
net = UNet1D(toy.unet)
count = lambda m: sum(p.numel() for p in m.parameters())
print(toy.unet)
print(f"U-Net parameters: {count(net):,}  (time MLP {count(net.time_mlp):,}, down {count(net.down):,}, "
      f"mid {count(net.mid):,}, up {count(net.up):,})")
for frames in (1, 12, 37):
    x = torch.randn(2, 80, frames)
    out = net(x, torch.randn_like(x), torch.rand(2), torch.ones(2, 1, frames))
    print(f"x_t {tuple(x.shape)} -> velocity {tuple(out.shape)}")

# %% [markdown]
# ## 3. The trained models
#
# The dual tokenizer (issue 3) gives 2 linguistic codes per 120 ms and 3 semantic ones;
# `interleave_codes` makes the LLSSS stream of *vocoder codes* (semantic codes shifted by the
# linguistic codebook size), the vocoder's only input. G groups → 12 G mel frames (16 kHz,
# hop 160, 80 bins, n_fft 1024) → 12 G × 160 samples. The mel → wave step is either
# Griffin-Lim (no training: least-squares inverse mel, 32 phase iterations) or the small
# iSTFT vocoder (ConvNeXt blocks at the frame rate predict a log-magnitude correction to the
# least-squares inverse and a phase; 16 Griffin-Lim iterations then refine that phase — the
# default, chosen by measurement in the benchmark). The recognizer is the independent judge
# (a CTC Transformer trained on ground-truth speech only).

# %%
import json

corpus = build_corpus(CorpusConfig.from_preset("toy"), progress=False)   # the data: held-out clips to resynthesise
t0 = time.time()
tokenizer = checkpoints.load_dual(SHIPPED)
voc = checkpoints.load_vocoder(SHIPPED)                 # the flow vocoder + the mel-to-wave model
flow, m2w = voc.flow, voc.mel2wav
rec = checkpoints.load_recognizer(SHIPPED)
print(f"shipped models loaded in {time.time() - t0:.1f} s")
trained = json.loads((SHIPPED / "provenance.json").read_text())["training_seconds"]
for name, m, key in [("flow (token encoder + U-Net)", flow, "flow vocoder"), ("iSTFT vocoder", m2w, "mel-to-wave"),
                     ("recognizer", rec.model, None)]:
    print(f"{name:30s} {count(m):>10,} parameters" + (f", trained in {trained[key] / 60:.0f} min" if key else ""))
voc_gl = Vocoder(flow, GriffinLim())
n_lin, n_sem = codebook_sizes(tokenizer)
print("codebooks: linguistic", n_lin, "semantic", n_sem)

# %% [markdown]
# ## 4. From noise to a mel spectrogram
#
# A held-out test clip, its ground-truth tokens, and the Euler trajectory of the flow
# (10 steps, guidance 0.7): at t = 0 the mel is noise; mu (the token encoder's guess) is
# already a blurred mel; the flow sharpens it.

# %%
clips = corpus.utterances("test")
speech, rendering = clips[3]
wav = peak_normalize(corpus.load(rendering, 16_000))
lin, sem = tokenizer.encode(wav, 16_000)
codes = interleave_codes(lin, sem, n_lin)
G = codes.numel() // 5
ref = wav[: G * 1920]
print(f"'{speech.text}' ({speech.language}, voice {speech.voice}): {wav.numel() / 16000:.2f} s -> "
      f"{lin.numel()} linguistic + {sem.numel()} semantic codes -> {G} groups -> {codes.numel()} vocoder codes")
print("first two groups:", codes[:10].tolist())
traj = []
with torch.no_grad():
    mel = voc.tokens_to_mel(codes, n_steps=10, guidance=0.7, trajectory=traj)
    mu = flow.denormalize(flow.encoder(codes[None], [G])[0])
print("mel", tuple(mel.shape), "| trajectory steps", len(traj))

# %%
shown = [0, 2, 4, 6, 10]
fig, axes = plt.subplots(1, len(shown) + 2, figsize=(18, 3), sharey=True)
grid = time_grid(10)
for a, k in zip(axes, shown):
    a.imshow(flow.denormalize(traj[k][0]), origin="lower", aspect="auto", vmin=-11, vmax=2)
    a.set_title(f"x at t = {grid[k]:.2f}")
axes[-2].imshow(mu, origin="lower", aspect="auto", vmin=-11, vmax=2); axes[-2].set_title("mu (token encoder)")
axes[-1].imshow(mel_frames(ref), origin="lower", aspect="auto", vmin=-11, vmax=2); axes[-1].set_title("reference")
axes[0].set_ylabel("mel bin")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 5. Resynthesis beside the reference
#
# The same tokens through flow + iSTFT vocoder (the default) and flow + Griffin-Lim, against
# the original clip (cut to the tokens' whole groups, peak-normalised as the tokenizer sees
# it). The recognizer reads each; PER against the clip's eSpeak phonemes. Listen:

# %%
with torch.no_grad():
    out_neural = m2w(mel)
    out_gl = GriffinLim()(mel)
ref_tokens = phoneme_tokens(rendering.phonemes)
for name, y in [("original", ref), ("flow + iSTFT", out_neural), ("flow + Griffin-Lim", out_gl)]:
    hyp = rec.transcribe(y, 16_000)
    print(f"{name:20s} PER {per(ref_tokens, hyp):.2f}  median F0 {median_f0(y, 16000):5.0f} Hz  "
          f"mel L1 {(mel_frames(y) - mel_frames(ref)).abs().mean():.2f}  heard: {' '.join(hyp)}")
    display(Audio(y.numpy(), rate=16_000))

# %% [markdown]
# On this clip all three are heard right, but the flow's pitch (about 153 Hz) sits 7 % under the
# original's (165 Hz): inside the 10 % tolerance here, yet over all 324 test answers only 52 % of
# the flow's renderings stay inside it (`bench_vocoder_ceiling.py`). Nothing tells the flow the
# speaker's pitch except what the tokens carry (no speaker embedding, by the paper's design), and
# starting from scaled-down noise pulls it toward the average pitch of its training data (section 6).

# %%
fig, axes = plt.subplots(3, 1, figsize=(12, 7), sharex=True)
for a, (name, y) in zip(axes, [("original", ref), ("flow + iSTFT", out_neural), ("flow + Griffin-Lim", out_gl)]):
    a.imshow(mel_frames(y), origin="lower", aspect="auto", vmin=-11, vmax=2)
    a.set_title(name); a.set_ylabel("mel bin")
axes[-1].set_xlabel("frame (10 ms)")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 6. Steps and guidance
#
# Euler steps trade time for accuracy; guidance w > 0 extrapolates from the unconditional
# velocity through the conditional one, v = (1 + w) v_cond − w v_uncond, pushing the sample
# further toward what the tokens say. Below, the mel distance to the reference for this clip, at
# the toy default noise temperature 0.6. What you might expect: more steps and some guidance
# give a mel closer to the reference. What it shows: steps beyond 2 change little, and guidance
# *raises* the L1 at every step count. An L1 to one reference rewards a smooth, average mel;
# guidance gives sharper, more contrasted spectra, which L1 penalises whether or not they sound
# better. The ear's verdict comes from the recognizer: on 108 held-out answers
# (`bench_vocoder_ceiling.py --checkpoints checkpoints/toy --set guidance=W --set temperature=T`),
# heard right is 0.57 at w = 0 and 0.58 at w = 0.7 (T = 0.6), and 0.59 / 0.63 / 0.64 at
# w = 0 / 0.7 / 1.5 with T = 0.3: guidance helps a little, a colder start helps more, and the
# noise temperature trades words for voice (at T = 1.0 the voice is recognised 0.76 of the time,
# against 0.60 at T = 0.6, but only 0.40 of the answers are heard right).

# %%
rows = []
with torch.no_grad():
    for n in (1, 2, 4, 10, 32):
        for w in (0.0, 0.7, 1.5):
            t0 = time.perf_counter()
            m = voc.tokens_to_mel(codes, n_steps=n, guidance=w)
            dt = time.perf_counter() - t0
            rows.append((n, w, (m - mel_frames(ref)).abs().mean().item(), dt))
print("steps  guidance  mel L1   flow time")
for n, w, d, dt in rows:
    print(f"{n:5d}  {w:8.1f}  {d:6.3f}  {dt * 1000:6.0f} ms")

# %%
import ipywidgets as widgets

def draw_setting(steps=10, guidance=0.7):
    with torch.no_grad():
        m = voc.tokens_to_mel(codes, n_steps=steps, guidance=guidance)
        y = m2w(m)
    plt.figure(figsize=(10, 2.5))
    plt.imshow(m, origin="lower", aspect="auto", vmin=-11, vmax=2)
    plt.title(f"{steps} Euler steps, guidance {guidance}: mel L1 {(m - mel_frames(ref)).abs().mean():.3f}")
    plt.show()
    display(Audio(y.numpy(), rate=16_000))

steps_w = widgets.IntSlider(value=10, min=1, max=32, description="steps")
guidance_w = widgets.FloatSlider(value=0.7, min=0.0, max=2.0, step=0.1, description="guidance")
out = widgets.Output()

def redraw(_=None):
    with out:
        out.clear_output(wait=True)
        draw_setting(steps_w.value, guidance_w.value)

steps_w.observe(redraw, "value"); guidance_w.observe(redraw, "value")
display(widgets.VBox([steps_w, guidance_w, out]))   # move a slider (in a live kernel) to redraw there
draw_setting(10, 0.7)                                        # the defaults, drawn here once

# %% [markdown]
# ## 7. Streaming
#
# The answer arrives from the backbone 10 text + 15 audio tokens at a time; 15 audio tokens
# are 3 LLSSS groups = 360 ms. `Vocoder.stream` decodes each such chunk with 3 earlier groups
# as left context, on the same frame-indexed noise as the offline decode, holds back the last
# 4 frames (40 ms) and cross-fades them with the next chunk's version. The first audio is
# ready after the first chunk:

# %%
t0 = time.perf_counter()
pieces, ready = [], []
with torch.no_grad():
    for piece in voc.stream(codes):
        ready.append(time.perf_counter() - t0)
        pieces.append(piece)
streamed = torch.cat(pieces)
offline = voc.decode(codes)
print(f"{len(pieces)} pieces, {streamed.numel()} samples (offline {offline.numel()}); "
      f"first audio after {ready[0] * 1000:.0f} ms, all after {ready[-1] * 1000:.0f} ms "
      f"for {streamed.numel() / 16000:.2f} s of speech")
print(f"mel L1 streamed vs offline: {(mel_frames(streamed) - mel_frames(offline)).abs().mean():.3f}")
edges = torch.tensor([p.numel() for p in pieces]).cumsum(0)[:-1] / 16000
plt.figure(figsize=(12, 2.5))
tt = torch.arange(streamed.numel()) / 16000
plt.plot(tt, offline, lw=0.4, label="offline"); plt.plot(tt, streamed, lw=0.4, alpha=0.7, label="streamed")
for e in edges: plt.axvline(e, color="k", ls="--", lw=0.8)
plt.xlabel("s"); plt.legend(loc="upper right"); plt.title("streamed pieces (dashed: piece boundaries)")
plt.show()
display(Audio(streamed.numpy(), rate=16_000))

# %% [markdown]
# ## What to take away
#
# * OT-CFM is regression onto a straight-line velocity; the sampler is a plain Euler loop.
# * The toy vocoder is conditioned *only* on tokens: pitch, voice and timing come from the
#   semantic and linguistic codes. How well they survive is measured in
#   `benchmarks/bench_vocoder.py` (`benchmarks/results/vocoder_toy.json`).
#   The shipped flow (the toy budget: 2,000 steps, 43 CPU-minutes on one thread beside the
#   backbone's training), sampled at 10 steps, guidance 0.7 and noise temperature 0.6, renders
#   the reference tokens of the 324 test answers so that the recognizer hears the right answer
#   56 % of the time (PER 0.39 against 0.12 for copy synthesis; pitch within 10 % 52 %, voice
#   recognised 55 %). On 60 *training* answers it does little better (75 %, PER 0.24 against
#   0.06): the flow is undertrained, not only short of data. Trained twice as long (4,000 steps,
#   13 minutes on two idle threads: `bench_vocoder_ceiling.py --checkpoints checkpoints/toy --set
#   steps=4000`), the same measurement gives 69 % heard right, PER 0.30, pitch 68 %, voice 76 %.
#   The flow is the weakest link of the whole chain (notebook 09), and the first place more
#   compute should go.
# * Mel → wave is not the bottleneck: copy synthesis with the iSTFT vocoder (16 Griffin-Lim
#   iterations on its phase) keeps PER at the floor and beats plain Griffin-Lim on F0
#   (37 vs 173 cents) and mel distance (0.46 vs 0.50), at under half of its time.
# * Real-time factor 0.28 for the flow (10 steps) and 0.04 for mel → wave on one CPU thread
#   (benchmark, shared cores); streaming gives the first audio after one chunk of tokens.
