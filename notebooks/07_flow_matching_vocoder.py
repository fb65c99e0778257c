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
# # 07 · The flow-matching token vocoder: audio tokens -> mel -> waveform
#
# [← 06 5:5:1 merge](06_model_merge.ipynb) · **07** · [08 end to end →](08_end_to_end.ipynb) · paper: *Neural vocoder (flow matching, U-Net of ResNet-1D + Transformer)* ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967))
#
# **You will build** flow matching from scratch on 2-D points (a 20-line training loop and an
# Euler sampler, checked against the library), then open the trained toy token vocoder: its
# U-Net, its trajectory from noise to a mel, resynthesis you can hear, what Euler steps and
# guidance do, and how it streams.
#
# **Prerequisites** [02 the semantic tokenizer and the 2:3 interleaving](02_semantic_tokenizer_and_interleaving.ipynb)
# (the LLSSS groups of 2 linguistic + 3 semantic codes, 120 ms each, are the vocoder's only input)
# and [01 the linguistic tokenizer](01_linguistic_tokenizer.ipynb) (what the codes carry); a
# log-mel spectrogram; regression with a small MLP; solving an ODE with Euler steps.
#
# **Run time** (2-core CPU, measured): warm about 20 s, cold about 30 s (cold: synthesising the
# toy corpus with eSpeak, for the held-out clip of sections 4-6). `AQAA_QUICK=1` (CI) trains the
# 2-D flow for fewer steps and shortens the exercises' sweeps: the same code path.

# %%
from aqaa_ref.viz import roadmap
roadmap(7);  # noqa: E703

# %% [markdown]
# **What the paper did.** Step-Audio-AQAA answers with audio *tokens*; a vocoder turns them into
# sound, and the paper stresses that the answer is only as good as that step. The vocoder is
# CosyVoice's: the 2:3 interleaved token stream is embedded, encoded by a small Transformer,
# projected to 80 mel bins and stretched to the mel frame rate (**mu**); a 1-D **U-Net** of ResNet
# and Transformer blocks then learns a velocity field that carries Gaussian noise to the mel
# spectrogram, trained by **optimal-transport conditional flow matching** (OT-CFM, sigma_min 1e-6,
# cosine time warp, conditions dropped with p = 0.2), sampled with **10 Euler steps** and
# **classifier-free guidance 0.7**; a HiFi-GAN-type vocoder makes the waveform.
#
# **What this notebook does.** (1) Flow matching on 2-D points, then the library's sampler on the
# same field. (2) The U-Net. (3)-(7) The trained toy models shipped in `checkpoints/toy/` (dual
# tokenizer, flow vocoder, mel-to-wave model, recognizer; trained by `python -m aqaa_ref train
# --preset toy`, the flow then trained again for 8,000 steps in 27 CPU-minutes by `python -m
# aqaa_ref retrain-flow checkpoints/toy --set steps=8000`): trajectories from noise to a mel, resynthesis
# of held-out speech beside the original, steps and guidance, streaming. Numbers over the whole
# test split are in `benchmarks/bench_vocoder.py` and `benchmarks/bench_vocoder_ceiling.py`.

# %%
import os, math, time
import torch
import torch.nn as nn
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from aqaa_ref.audio import load_audio, median_f0, peak_normalize
from aqaa_ref.data import build_corpus, CorpusConfig, phoneme_tokens
from aqaa_ref.data.samples import load_samples
from aqaa_ref.vocoder import (Vocoder, VocoderConfig, GriffinLim, UNet1D, euler_sample, guided_velocity,
                              interleave_codes, mel_frames, codebook_sizes, StreamDecoder)
from aqaa_ref.vocoder.flow import cfm_interpolant, cfm_target, time_grid
from aqaa_ref.evaluation.recognizer import per

QUICK = os.environ.get("AQAA_QUICK") == "1"   # CI: a shorter 2-D warm-up and shorter sweeps
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
#
# **What you should see:** the loss cannot go to 0. Many (z, x1) pairs pass through the same
# x_t, so the best v is an average and the residual is the spread of u around it: near t = 0,
# u ≈ x1 − z has a variance of about 2 + 1 = 3 per coordinate, near t = 1 about 1. The printed
# loss (one batch of 256, so noisy) should end between 1 and 2.5.

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

# %% [markdown]
# **What you should see:** the 1,000 samples (right) sit on the 8 blobs of the data, with a few
# strays on the arcs between them; the trajectories (middle) are nearly straight, bending only
# where they must choose a blob. Exercise 1 counts: in full mode about 77 % of the samples land
# within 0.45 of a centre at 20 steps (the data itself: 99 %).

# %%
path_t = torch.stack(path)                             # (21, 1000, 2)
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
axes[0].scatter(*z.T, s=3, c="gray"); axes[0].set_title(f"noise z (t = 0), n = {z.shape[0]}")
for i in range(150):
    axes[1].plot(path_t[:, i, 0], path_t[:, i, 1], lw=0.6, alpha=0.6)
axes[1].set_title("Euler trajectories, 20 steps (n = 150 shown)")
axes[2].scatter(*x.T, s=3, c="C1", label="samples (t = 1)")
axes[2].scatter(*ring(1000).T, s=3, c="C0", alpha=0.3, label="data")
axes[2].legend(loc="upper right", fontsize=8); axes[2].set_title("samples vs data, n = 1000 each")
for a in axes:
    a.set_aspect("equal"); a.set_xlim(-3.5, 3.5); a.set_ylim(-3.5, 3.5); a.set_xlabel("x[0]")
axes[0].set_ylabel("x[1]")
plt.tight_layout(); plt.show()

# %% [markdown]
# ### The pieces the vocoder adds
#
# * **Cosine time warp** t ← 1 − cos(tπ/2): training times and sampling grid both crowd near
#   t = 0, where the field is hardest (pure noise, every target possible).
# * **Classifier-free guidance**: training drops the condition (mu ← 0) for 20 % of the
#   examples, so one network knows v(x, t | mu) and v(x, t | ∅); sampling uses
#   v = (1 + w) v_cond − w v_uncond, w = 0.7 (Step-Audio: 1.7 v_cond − 0.7 v_uncond).
#
# **What you should see:** the library's formulas equal the hand computation: x_t = 1.3,
# u = −2.8 (σ = 0.1, t = 0.25, z = 2, x1 = −1), guided velocity 1.35; and the 10-step grid's
# first steps are short (0.012, then 0.037) and its last ones long (0.156).

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
# then a 1 × 1 conv to 80 bins.
#
# **What you should see:** the velocity has exactly the shape of x_t for any number of frames,
# odd ones included (down-sampling rounds up; up-sampling is cropped back to the skip), and the
# parameters sit mostly in the mid and up blocks, which run at 160 channels.

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
# The dual tokenizer (notebooks 01-02) gives 2 linguistic codes per 120 ms and 3 semantic ones;
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
# the shipped flow is the 8,000-step one (`python -m aqaa_ref retrain-flow`): its own run's seconds
trained["flow vocoder"] = json.loads((SHIPPED / "vocoder" / "flow" / "config.json").read_text())["train_info"]["train_seconds"]
for name, m, key in [("flow (token encoder + U-Net)", flow, "flow vocoder"), ("iSTFT vocoder", m2w, "mel-to-wave"),
                     ("recognizer", rec.model, None)]:
    print(f"{name:30s} {count(m):>10,} parameters" + (f", trained in {trained[key] / 60:.0f} min" if key else ""))
voc_gl = Vocoder(flow, GriffinLim())
n_lin, n_sem = codebook_sizes(tokenizer)
print("codebooks: linguistic", n_lin, "semantic", n_sem)

# %% [markdown]
# ## 4. From noise to a mel spectrogram
#
# A held-out test clip, its ground-truth tokens, and the Euler trajectory of the flow (10 steps,
# guidance 0.7, the toy's noise temperature 0.6: the noise is scaled by 0.6 before the first step).
#
# **What you should see:** 4 groups of 5 codes for this 0.48 s clip (0.48 / 0.12), a mel of
# 12 × 4 = 48 frames. In the figure, x at t = 0 is noise; the horizontal stripes of the voice's
# harmonics appear part-way (by t ≈ 0.4); mu, the token encoder's guess, is smeared along time; the
# final sample has mu's layout with the fine structure the reference has.

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
    im = a.imshow(flow.denormalize(traj[k][0]), origin="lower", aspect="auto", vmin=-11, vmax=2)
    a.set_title(f"x at t = {grid[k]:.2f}")
axes[-2].imshow(mu, origin="lower", aspect="auto", vmin=-11, vmax=2); axes[-2].set_title("mu (token encoder)")
axes[-1].imshow(mel_frames(ref), origin="lower", aspect="auto", vmin=-11, vmax=2); axes[-1].set_title("reference")
axes[0].set_ylabel("mel bin")
for a in axes:
    a.set_xlabel("frame (10 ms)")
fig.colorbar(im, ax=axes, label="log mel", fraction=0.02, pad=0.01)
plt.show()

# %% [markdown]
# ## 5. Resynthesis beside the reference
#
# The same tokens through flow + iSTFT vocoder (the default) and flow + Griffin-Lim, against
# the original clip (cut to the tokens' whole groups, peak-normalised as the tokenizer sees
# it). The recognizer reads each; PER against the clip's eSpeak phonemes.
#
# **What you should see:** a one-syllable word that the recognizer hears right in all three
# (PER 0); a mel L1 to the reference between 1 and 1.5 for both flow renderings (the same mel, so
# the two mel → wave steps differ little); and the flow's pitch within 10 % of the original's.

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
# As predicted, all three are heard right and the flow's pitch (172 Hz) sits 4 % above the
# original's (165 Hz), inside the 10 % tolerance; over all 324 test answers 78 % of the flow's
# renderings stay inside it (`bench_vocoder_ceiling.py --set steps=8000`). Nothing tells the flow
# the speaker's pitch except what the tokens carry (no speaker embedding, by the paper's design),
# so it has to learn it from them: the toy recipe's 2,000-step flow had not (154 Hz on this clip,
# 7 % low, and only 52 % of the test answers inside the tolerance), and Exercise 2 shows that its
# low pitch was the model's, not the noise's.

# %%
fig, axes = plt.subplots(3, 1, figsize=(12, 7), sharex=True)
for a, (name, y) in zip(axes, [("original", ref), ("flow + iSTFT", out_neural), ("flow + Griffin-Lim", out_gl)]):
    im = a.imshow(mel_frames(y), origin="lower", aspect="auto", vmin=-11, vmax=2)
    a.set_title(name); a.set_ylabel("mel bin")
axes[-1].set_xlabel("frame (10 ms)")
fig.colorbar(im, ax=axes, label="log mel", fraction=0.02, pad=0.01)
plt.show()

# %% [markdown]
# ## 6. Steps and guidance
#
# Euler steps trade time for accuracy; guidance w > 0 extrapolates from the unconditional
# velocity through the conditional one, v = (1 + w) v_cond − w v_uncond, pushing the sample
# further toward what the tokens say. Below, the mel L1 distance to the reference for this clip.
#
# **What you should see** (it is not what one might first expect, "more steps and some guidance
# bring the mel closer"): without guidance the L1 hardly moves with the number of steps (within
# ±0.05 of 1.2 from 1 to 32 steps); guidance *raises* the L1 at every step count, most at few
# steps (1 step, w = 1.5: above 4) and less with more steps (at 10 steps 0.7 adds about 0.1). An
# L1 to one reference rewards a smooth, average mel; guidance makes the spectrum more contrasted,
# which L1 penalises whether or not it sounds better, and a large w with 1-2 big steps overshoots.
# The flow's time grows in proportion to the steps, and guidance (two U-Net passes per step, in
# one batch) costs up to twice as much.

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

# %% [markdown]
# The table bears this out (compare the three rows of each step count). What L1 cannot say, the
# recognizer can: on 108 held-out answers (`bench_vocoder_ceiling.py --checkpoints checkpoints/toy
# --set guidance=W --set temperature=T`), heard right is 0.57 at w = 0 and 0.58 at w = 0.7
# (T = 0.6), and 0.59 / 0.63 / 0.64 at w = 0 / 0.7 / 1.5 with T = 0.3: guidance helps the ear a
# little, a colder start helps more, and the noise temperature trades words for voice (at T = 1.0
# the voice is recognised 0.76 of the time, against 0.60 at T = 0.6, but only 0.40 of the answers
# are heard right). The shipped setting (10 steps, w = 0.7, T = 0.6) is drawn below.
#
# **What you should see:** the default setting's mel L1 is the table's (10, 0.7) row, 1.298 on
# this clip, and its audio is the "flow + iSTFT" of section 5.

# %%
def draw_setting(steps=10, guidance=0.7):
    """The mel and audio of one sampling setting, for the clip of sections 4-6."""
    with torch.no_grad():
        m = voc.tokens_to_mel(codes, n_steps=steps, guidance=guidance)
        y = m2w(m)
    plt.figure(figsize=(10, 2.5))
    plt.imshow(m, origin="lower", aspect="auto", vmin=-11, vmax=2)
    plt.colorbar(label="log mel", pad=0.01)
    plt.xlabel("frame (10 ms)"); plt.ylabel("mel bin")
    plt.title(f"{steps} Euler steps, guidance {guidance}: mel L1 {(m - mel_frames(ref)).abs().mean():.3f}")
    plt.show()
    display(Audio(y.numpy(), rate=16_000))

draw_setting(10, 0.7)                                  # the default setting, drawn in an ordinary cell

# %% [markdown]
# Sliders for the same drawing (they redraw only in a live kernel; a saved copy of this notebook
# shows the widget's frame, and the default above):

# %%
import ipywidgets as widgets

steps_w = widgets.IntSlider(value=10, min=1, max=32, description="steps")
guidance_w = widgets.FloatSlider(value=0.7, min=0.0, max=2.0, step=0.1, description="guidance")
out = widgets.Output()

def redraw(_=None):
    with out:
        out.clear_output(wait=True)
        draw_setting(steps_w.value, guidance_w.value)

steps_w.observe(redraw, "value"); guidance_w.observe(redraw, "value")
display(widgets.VBox([steps_w, guidance_w, out]))   # move a slider (in a live kernel) to redraw there

# %% [markdown]
# ## 7. Streaming
#
# The answer arrives from the backbone 10 text + 15 audio tokens at a time; 15 audio tokens are
# 3 LLSSS groups = 360 ms. `Vocoder.stream` decodes each such chunk with 3 earlier groups as left
# context, on the same frame-indexed noise as the offline decode, holds back the last 4 frames
# (40 ms) and cross-fades them with the next chunk's version, and yields each piece as soon as it
# is made. A one-word clip has too few chunks to show this, so here is the longest shipped clip
# (the spoken question `q19`, 2.68 s); notebook 08 streams a real answer while the backbone writes it.
#
# **What you should see:** 2.68 s hold 22 whole groups (2.64 s), which stream as 8 pieces: 7
# chunks of 3 groups and a last one of 1; the first piece is 640 samples short of 3 × 1920 (its
# held-back tail), the middle ones are exactly 5760, and together they are exactly the offline
# length.

# %%
# NBVAL_CHECK_OUTPUT
long = load_samples()[19]                              # the longest shipped clip
wav_long = peak_normalize(load_audio(long["path"]))
codes_long = interleave_codes(*tokenizer.encode(wav_long, 16_000), n_lin)
G_long = codes_long.numel() // 5
t0 = time.perf_counter()
pieces, ready = [], []
with torch.no_grad():
    for piece in voc.stream(codes_long):               # each piece as soon as its chunk is decoded
        ready.append(time.perf_counter() - t0)
        pieces.append(piece)
t0 = time.perf_counter()
offline = voc.decode(codes_long)
t_offline = time.perf_counter() - t0
streamed = torch.cat(pieces)
print(f"{long['file'][:3]}: {long['question']!r}, {G_long} groups = {G_long * 0.12:.2f} s of audio")
print(f"{len(pieces)} pieces, samples: {[p.numel() for p in pieces]}")
print("streamed length == offline length:", streamed.numel() == offline.numel())

# %% [markdown]
# What streaming changes in the sound. A vocoder with a short receptive field (a stack of
# convolutions) would change only the frames next to a chunk seam. This one does not have one:
# the token encoder and the U-Net's Transformer blocks attend over their whole input, so every
# frame of a chunk depends on which groups the window holds (3 to the left, none to the right).
#
# **What you should see:** the first piece long before the last (after about one eighth of the
# total time); the streamed mel differs from the offline mel *everywhere*, by more than a second
# offline decode on another noise seed does (mel L1 about 0.9 against 0.45), and the group just
# before each seam, the one decoded with no right context at all, differs no more than the rest
# (within ±0.1). The waveforms differ by as much as the signal itself, sample by sample: the phase
# is re-estimated per window, so compare mels.

# %%
other = voc.decode(codes_long, seed=1)                 # the same tokens on other noise: the flow's own spread
M = mel_frames(offline)
frame_diff = (mel_frames(streamed) - M).abs().mean(0)  # (frames,) mel L1 per 10 ms frame
seed_diff = (mel_frames(other) - M).abs().mean(0)
seams = (torch.tensor([p.numel() for p in pieces]).cumsum(0)[:-1] // 160).tolist()   # frame of each seam
before = torch.zeros(frame_diff.numel(), dtype=torch.bool)   # the last group (12 frames) of each chunk
for e in seams:
    before[max(0, e - 12): e] = True
print(f"first audio after {ready[0]:.2f} s, the last of {len(pieces)} pieces after {ready[-1]:.2f} s "
      f"(offline decode {t_offline:.2f} s) for {offline.numel() / 16000:.2f} s of speech")
print(f"mel L1 streamed vs offline {frame_diff.mean():.3f} | seed 1 vs seed 0 offline {seed_diff.mean():.3f}")
print(f"  streamed vs offline in the group before a seam {frame_diff[before].mean():.3f} (n = {int(before.sum())} frames), "
      f"elsewhere {frame_diff[~before].mean():.3f} (n = {int((~before).sum())})")
print(f"max |sample difference| {(streamed - offline).abs().max():.2f} (offline peak {offline.abs().max():.2f})")
ref_long = wav_long[: G_long * 1920]
for name, y in [("original", ref_long), ("offline", offline), ("streamed", streamed)]:
    print(f"{name:9s} heard: {' '.join(rec.transcribe(y, 16_000))}")
fig, ax = plt.subplots(figsize=(12, 2.8))
ax.plot(frame_diff, lw=1, label="streamed vs offline")
ax.plot(seed_diff, lw=1, alpha=0.7, label="another seed vs offline")
for e in seams:
    ax.axvline(e, color="k", ls="--", lw=0.8)
ax.set_xlabel("frame (10 ms)"); ax.set_ylabel("mel L1 per frame")
ax.set_title(f"where streaming changes the mel (dashed: the {len(seams)} seams, n = {frame_diff.numel()} frames)")
ax.legend(loc="upper right", fontsize=8); plt.tight_layout(); plt.show()
display(Audio(streamed.numpy(), rate=16_000))

# %% [markdown]
# So streaming here is not "offline audio with seams": it is another rendering of the same tokens,
# twice as different from the offline one as a new noise draw, and further from the original
# (listen, and compare what the recognizer hears: "slowly" comes out as "slobi"). The better the
# flow is trained, the more its offline renderings agree with each other (another seed: 0.45 here,
# where the 2,000-step flow gave about 0.66), but a window that holds 3 groups of left context and
# none of right context still changes every frame. A few of the highest peaks in the figure do sit
# just before a seam (frames made without right context; only their last 40 ms are cross-faded
# away), but on average that group differs no more than the rest. (The flat zero stretch is a
# pause, where every rendering sits at the mel floor.) More left context brings the stream closer to
# the offline decode (Exercise 4), but never to it: the right context a chunk would need has not
# been generated yet. Streaming also costs work: each chunk of 3 new groups decodes 6, and small
# windows use the CPU less well, so the whole stream takes about three times the offline decode
# (compare the two times printed above). The tokens, and so the words, are untouched; notebook 08 checks that on a real
# answer and times it while the backbone writes.

# %% [markdown]
# ## Summary
#
# A flow-matching vocoder is regression onto a straight-line velocity, from noise to data, plus a
# plain Euler loop to sample it; the vocoder conditions that field on the tokens through mu (the
# token encoder's blurred mel) and sharpens it in 10 steps, with guidance and a scaled-down noise as
# the two knobs. Conditioned *only* on tokens, it must read pitch, voice and timing from the
# linguistic and semantic codes: the shipped flow (8,000 steps, 27 CPU-minutes) renders the
# reference tokens of the 324 test answers so that the recognizer hears the right answer 78 % of
# the time (PER 0.25 against 0.13 for copy synthesis; pitch within 10 % 78 %, voice recognised
# 78 %); the toy recipe's 2,000 steps (about 7 minutes) give 56 %, 4,000 give 69 %. It is still the
# weakest link of the chain, and the first place more compute should go; mel → wave is not (copy
# synthesis with the iSTFT vocoder keeps PER at the floor). Streaming decodes 360 ms chunks with
# left context: audio starts after one chunk, the tokens are the same, the sound is a different
# rendering throughout, and a less faithful one.
#
# Next: [08 end to end](08_end_to_end.ipynb) puts this vocoder behind the tokenizer and the merged
# backbone: a spoken question in, a spoken answer out, streamed while it is generated.

# %% [markdown]
# ## Exercises
#
# Each runs in well under a minute (seconds in quick mode). The expected results are those of
# full mode on the shipped models.

# %% [markdown]
# ### Exercise 1: how many Euler steps does the 2-D flow need?
#
# Sample the section-1 field from the same 1,000 noise points with 1, 2, 5, 20 and 100 Euler steps,
# on the uniform grid and on the cosine-warped one, and count the samples within 0.45 of one of
# the 8 centres (for the data itself that is 99 %: 3 standard deviations).
#
# **Expected:** (full mode) 1 step lands nothing on a blob (0 %: every sample moves toward the
# mean, the middle of the ring); 2 steps 30 % uniform but only 4 % warped; 5 steps 64-68 %;
# 20 steps 76-77 %, and 100 steps no better (78 %): what is left is the field's error, not the
# solver's. The cosine warp, made for the mel field that is hardest near t = 0, does not help
# this one. Quick mode (150 training steps) plateaus lower, near 48 %.

# %% tags=["solution"] jupyter={"source_hidden": true}
centres = 2 * torch.stack([torch.cos(torch.arange(8) * math.pi / 4), torch.sin(torch.arange(8) * math.pi / 4)], 1)
torch.manual_seed(1)
z = torch.randn(1000, 2)
print("steps  on a blob: uniform  warped")
for n in (1, 2, 5, 20, 100):
    share = []
    for warp in (False, True):
        with torch.no_grad():
            xs = euler_sample(lambda x, t: v(x, t.view(1, 1)), z, n_steps=n, warp=warp)
        share.append((torch.cdist(xs, centres).min(1).values < 0.45).float().mean().item())
    print(f"{n:5d}  {share[0]:16.0%}  {share[1]:6.0%}")

# %% [markdown]
# ### Exercise 2: is the flow's pitch error noise, or the model?
#
# Decode the tokens of the long clip of section 7 (`codes_long`) with noise seeds 0 to 4; print
# each rendering's median F0, its PER against the clip's eSpeak phonemes (`long["phonemes"]`)
# and its mel L1 to the original (`ref_long`).
#
# **Expected:** the original at 122 Hz; the five renderings at 118-121 Hz (1-3 % low), PER
# 0.00-0.05, mel L1 1.40-1.44. The noise moves the pitch by a few Hz, no more. The toy recipe's
# 2,000-step flow rendered all five at 112-113 Hz, 8 % low every time: that drift was the model's,
# so more training fixed most of it, where more sampling could not have.

# %% tags=["solution"] jupyter={"source_hidden": true}
ref_phonemes = phoneme_tokens(long["phonemes"])
print(f"original  F0 {median_f0(ref_long, 16000):.0f} Hz")
for seed in range(5):
    y = voc.decode(codes_long, seed=seed)
    print(f"seed {seed}    F0 {median_f0(y, 16000):.0f} Hz  PER {per(ref_phonemes, rec.transcribe(y, 16000)):.2f}  "
          f"mel L1 {(mel_frames(y) - mel_frames(ref_long)).abs().mean():.3f}")

# %% [markdown]
# ### Exercise 3: the noise temperature
#
# The flow starts from noise scaled by a temperature T (0.6 in the toy preset). Decode
# `codes_long` at T = 0.3, 0.6 and 1.0 (`voc.decode(codes_long, temperature=T)`) and print the
# median F0, the PER and the mel L1 to the original; listen to T = 1.0.
#
# **Expected:** T = 0.3 and 0.6 sound alike (118-119 Hz, PER 0.00, mel L1 1.38 and 1.40); at
# T = 1.0 the mel L1 rises to about 1.49 and the pitch to 122 Hz, the words still right: a hotter
# start gives a livelier, less faithful rendering (over 108 answers the benchmark finds the same
# trade with the 2,000-step flow: the voice is recognised more often at T = 1.0, the words less
# often). The better-trained flow is less sensitive to T than that one was (mel L1 1.86 and PER
# 0.10 at T = 1.0).

# %% tags=["solution"] jupyter={"source_hidden": true}
for T in (0.3, 0.6, 1.0):
    y = voc.decode(codes_long, temperature=T)
    print(f"T = {T}: F0 {median_f0(y, 16000):.0f} Hz  PER {per(ref_phonemes, rec.transcribe(y, 16000)):.2f}  "
          f"mel L1 {(mel_frames(y) - mel_frames(ref_long)).abs().mean():.3f}")
    if T == 1.0:
        display(Audio(y.numpy(), rate=16_000))

# %% [markdown]
# ### Exercise 4: how much left context does streaming need?
#
# Stream `codes_long` through a `StreamDecoder(voc, chunk_groups=3, context_groups=C,
# overlap_frames=min(4, 12 * C))` for C = 0, 1, 3, 6 and 12 (push all codes with `final=True`) and
# print the mel L1 between the streamed and the offline audio (`offline`), beside the seed-to-seed
# figure of section 7.
#
# **Expected:** the distance falls with context but never reaches 0: about 1.10 with no context,
# 1.04 with 1 group, 0.90 with the default 3 (twice another noise seed's 0.45), 0.84 with 6 and
# 0.76 with 12 (1.44 s of left context; what is left is the missing right context). Each group
# of context costs one more group of flow and mel-to-wave work per chunk.

# %% tags=["solution"] jupyter={"source_hidden": true}
for C in ((0, 3, 12) if QUICK else (0, 1, 3, 6, 12)):
    dec = StreamDecoder(voc, chunk_groups=3, context_groups=C, overlap_frames=min(4, 12 * C))
    y = torch.cat(dec.push(codes_long, final=True))
    print(f"context {C:2d} groups: mel L1 streamed vs offline {(mel_frames(y) - M).abs().mean():.3f}")
print(f"(another noise seed, offline: {seed_diff.mean():.3f})")
