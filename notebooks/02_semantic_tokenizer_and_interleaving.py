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
# # 02 · The semantic tokenizer, and the 2:3 interleaving
#
# [← 01 linguistic tokenizer](01_linguistic_tokenizer.ipynb) · **02** · [03 backbone + vocab →](03_backbone_and_vocabulary.ipynb) · paper: *Dual-codebook audio tokenizer (semantic, 2:3 interleaving)* ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967))
#
# **You will build** the second audio token stream: a 25 Hz tokenizer whose vector-quantized codes keep what the linguistic stream drops (pitch, timbre), a measurement of what each stream carries (linear probes), and the 2:3 interleaving that turns both streams into the one id sequence the backbone reads.
#
# **Prerequisites** [01 linguistic tokenizer](01_linguistic_tokenizer.ipynb) (the causal log-mel, k-means codes, CTC, streaming; the same cached tokenizer is loaded here) and [00 data engine](00_data_engine.ipynb) (voices, rates and pitches).
#
# **Run time** (2-core CPU, measured): warm about 1 min 50 s, cold about 4 min (cold: training the dual tokenizer once, if notebook 01 has not, and the toy corpus, if notebook 00 has not).

# %%
from aqaa_ref.viz import roadmap
_ = roadmap(2)

# %% [markdown]
# **What the paper does.** The second stream, *semantic*, runs at **25 Hz** (one token per 40 ms) with **4,096 codes**. Step-Audio takes it from CosyVoice v1's *supervised semantic tokenizer* (CosyVoice, [arXiv 2407.05407](https://arxiv.org/abs/2407.05407)): an ASR-trained encoder with a vector-quantization bottleneck. The paper's claim ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967)): the two streams are complementary — linguistic tokens carry phonemes, semantic tokens carry acoustic detail (tone, timbre, emotion) — and the backbone reads them interleaved in groups of **2 linguistic + 3 semantic = 120 ms** (`LLSSS`), ids offset after the text vocabulary.
#
# **What we do.** A causal encoder on 40 ms stacks of log-mel, a **VQ bottleneck with an EMA codebook**, and, for training only, a decoder from the quantized vectors with three heads:
#
# | head | loss | why |
# |---|---|---|
# | the 4 log-mel frames of each token | L1 | acoustic detail: timbre, loudness, the harmonics of the voice |
# | log-F0 and voicing of each token | L1 + BCE | pitch, explicitly: the vocoder sees only tokens and must put the pitch back ("answer in a high voice") |
# | phonemes, 2 CTC slots per token | CTC (weight 0.3) | content, like CosyVoice's supervised tokenizer; also makes the codes more predictable from text |
#
# **EMA codebook, not a gradient-learned one.** Each code is the running mean of the encoder vectors assigned to it (decay 0.99); the encoder is pulled towards its code by a commitment loss (β = 0.25) and gets gradients through the straight-through estimator. EMA updates need no codebook learning rate and settle within a few hundred steps — all the toy budget allows. Codes whose EMA count falls below 0.5 are **re-seeded** from encoder outputs of the current batch every 20 steps (not in the last 20% of training, so the codebook can settle). Codes used and perplexity are logged every step.
#
# `QUICK` mode (CI) uses the tiny preset; the full run the cached toy tokenizer. Numbers in the text are from the full run.

# %%
import os, time, tempfile

import numpy as np
import torch
import torchaudio
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from aqaa_ref.audio import resample, peak_normalize, median_f0, AudioError
from aqaa_ref.data import synthesize, build_corpus, CorpusConfig, strided
from aqaa_ref.data.styles import assistant
from aqaa_ref.tokenizer import (DualConfig, DualTokenizer, LinguisticConfig, LinguisticTokenizer, SemanticConfig,
                                SemanticTokenizer, PhonemeInventory, load_or_train_dual, training_log, causal_log_mel,
                                load_clips, usage_stats)
from aqaa_ref.tokenizer.features import frame_f0
from aqaa_ref.tokenizer.semantic import describe, token_f0
from aqaa_ref.tokenizer.probes import collect, codebook_usage, probe_table, format_table
from aqaa_ref.viz import COLORS

QUICK = os.environ.get("AQAA_QUICK") == "1"
PRESET = "tiny" if QUICK else "toy"
print("quick mode" if QUICK else "full mode", "| preset:", PRESET)

# %%
corpus = build_corpus(CorpusConfig.from_preset(PRESET), progress=False)
cfg = DualConfig.from_preset(PRESET)
t0 = time.time()
tok = load_or_train_dual(corpus, cfg, progress=False)   # trained once (notebook 01 or the benchmark), then cached
print(f"load_or_train_dual: {time.time() - t0:.1f} s")
print(tok)
print(describe(tok.semantic))
sem = tok.semantic

# %% [markdown]
# ## 1. Shapes, one step at a time
#
# **What you should see:** a 1.85 s sentence is 29,523 samples at 16 kHz, so 29,523 // 640 = 46 semantic tokens; the mel has 184 frames plus 4 frames (40 ms) of lookahead = 188; z and the codes have one row per token (46, code width 32); the training heads give back 4 × 46 = 184 mel frames, one F0 and one voicing value per token, and 2 × 46 = 92 CTC slots over the 112 phoneme classes.

# %%
wav22, sr, _ = synthesize("which is bigger, seven or nine", voice="f1", rate=175, pitch=50)
x = peak_normalize(resample(torch.from_numpy(wav22), sr, 16_000))
T = x.numel()
mel = causal_log_mel(torch.nn.functional.pad(x, (0, sem.lookahead_samples)))[None]   # (1, F, 80) incl. 40 ms lookahead
with torch.no_grad():
    z = sem.embed(mel, T // 640)                      # (1, N, code_dim): before quantization
    codes = sem.codes_from_mel(mel, T // 640)         # (1, N): nearest codebook entry
    out = sem.decode(sem.vq.codebook[codes])          # the training heads
print("audio", (T,), "-> mel", tuple(mel.shape), "-> z", tuple(z.shape), "-> codes", tuple(codes.shape))
print("heads: mel", tuple(out["mel"].shape), "| f0", tuple(out["f0"].shape), "| voiced", tuple(out["voiced"].shape), "| ctc", tuple(out["ctc"].shape))
assert torch.equal(codes[0], tok.encode(x)[1])

# %% [markdown]
# ## 2. Training curves and codebook health
#
# Per step: the three losses, and the health of the codebook on that batch (codes used, perplexity = exp(entropy of the code histogram)), with the dead codes re-seeded.
#
# **What you should see:** a codebook that *collapses* first. The codebook starts as 512 random encoder vectors, but in the first steps the encoder's outputs move faster than the EMA means follow them, so expect nearly every vector to land on a handful of codes within a few steps. Re-seeding cannot help at once: an unused code's EMA count decays as 0.99ᵗ from 1 and drops below the 0.5 threshold only after ln 0.5 / ln 0.99 ≈ 69 steps, so the first re-seeding comes at step 79 (the first multiple of 20 after that). Codes used briefly in the first steps start from a slightly higher count and die a little later, so re-seeding should go on at the following rounds, fewer codes each time, until it stops at step 280 (80 % of 350); usage should climb to several hundred codes per batch and stay there.

# %%
log = training_log(corpus, cfg)["semantic"]
st = [r["step"] for r in log]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.2), layout="constrained")
for k in ("mel", "f0", "ctc"):
    axes[0].plot(st, [r[k] for r in log], label=k)
axes[0].set(yscale="log", xlabel="step", ylabel="loss (per batch)", title="semantic tokenizer: the three losses")
axes[0].legend()
axes[1].plot(st, [r["used"] for r in log], label="codes used in the batch", color=COLORS["semantic"])
axes[1].plot(st, [r["perplexity"] for r in log], label="perplexity", color="k", lw=0.8)
axes[1].set(xlabel="step", ylabel="codes", title=f"codebook health (K = {sem.cfg.codebook_size})")
axes[1].legend()
axes[2].bar(st, [r["reseeded"] for r in log], width=3, color=COLORS["semantic"])
axes[2].set(xlabel="step", ylabel="codes re-seeded", title="dead codes re-seeded")
plt.show()
used = [r["used"] for r in log]
seeded = [r for r in log if r["reseeded"]]
first_step = seeded[0]["step"] if seeded else len(log) - 1
print(f"codes used in the batch: step 0 {used[0]}, lowest {min(used[:first_step + 1])} before the first re-seeding, "
      f"mean of the last 20 steps {np.mean(used[-20:]):.0f}")
if seeded:
    print(f"re-seedings: {len(seeded)}, the first at step {seeded[0]['step']} ({seeded[0]['reseeded']} codes), "
          f"the last at step {seeded[-1]['step']} ({seeded[-1]['reseeded']} codes); {sum(r['reseeded'] for r in seeded)} codes in all")
else:
    print(f"no code was re-seeded in these {len(log)} steps (an unused code's EMA count stays above 0.5 for 69 steps)")

# %% [markdown]
# As predicted: 481 codes used at step 0, as few as 7 before the first re-seeding, which came at step 79 and replaced 190 codes; 197 more at step 99, then fewer each round, the last at step 279: 499 codes re-seeded in 11 rounds. Over the last 20 steps, 452 of the 512 codes are used in each batch. Without re-seeding the toy codebook would have stayed at about a dozen codes.
#
# **What you should see** on the test split: both codebooks nearly fully used (over 95 % of the codes), and perplexities well below K (some codes are much more frequent than others: silence, common phonemes).

# %%
t0 = time.time()
test_utts = collect(tok, corpus, "test")
train_utts = collect(tok, corpus, "train", limit=60 if QUICK else 1500)
usage = codebook_usage(test_utts, tok)
for stream, u in usage.items():
    print(f"test split, {stream:<10}: {u['used']:4d}/{u['codes']} codes used ({100 * u['used_fraction']:.1f}%), perplexity {u['perplexity']:.0f}")
fig, axes = plt.subplots(1, 2, figsize=(12, 2.8), layout="constrained")
for ax, stream in zip(axes, ("linguistic", "semantic")):
    c = torch.bincount(torch.cat([getattr(u, stream) for u in test_utts]), minlength=usage[stream]["codes"])
    ax.bar(range(len(c)), c.sort(descending=True).values, width=1.0, color=COLORS[stream])
    ax.set(title=f"{stream}: code counts on the test split (n = {int(c.sum())} tokens)", xlabel="code rank", ylabel="count")
plt.show()

# %% [markdown]
# ## 3. What survives quantization: pitch and timbre
#
# The decoder sees **only the semantic codes**. If the codes keep pitch, its F0 head recovers the measured F0 of each token, and its mel head recovers the harmonics and formants. Below: the same sentence said by the assistant in a low and in a high voice, measured F0 against F0 read back from the tokens, and the log-mel rebuilt from the tokens (a training-time decoder, not the vocoder). The audio players play the original and a Griffin-Lim rendering of the rebuilt mel (rough, but the pitch difference is audible).
#
# **What you should see:** the two voices about an octave apart (notebook 00 measured 135 and 264 Hz for these settings, on another sentence), and the F0 read from the tokens following each measured contour within a few semitones; the rebuilt mel smoother than the original (a 32-number code per 40 ms cannot hold every harmonic) but with the high voice's harmonics visibly wider apart.

# %%
def from_tokens(w):
    """(T,) 16 kHz -> (codes, measured F0 per token (Hz, 0 = unvoiced), F0 read from the tokens (Hz), rebuilt log-mel)."""
    _, s = tok.encode(w)
    m = causal_log_mel(w)
    with torch.no_grad():
        out = sem.decode(sem.vq.codebook[s][None])
    mean, std = sem.logf0_mean_std
    f0_tok = torch.exp(out["f0"][0] * std + mean) * (out["voiced"][0] > 0)
    measured = frame_f0(w, m.shape[0])[: len(s) * 4].view(-1, 4)
    voiced = measured > 0
    f0_meas = torch.where(voiced.sum(1) >= 2, (measured.clamp(min=1).log() * voiced).sum(1) / voiced.sum(1).clamp(min=1), torch.zeros(len(s))).exp() * (voiced.sum(1) >= 2)
    return s, f0_meas, f0_tok, sem.decode_mel(s[None])[0]

inv_mel = torchaudio.transforms.InverseMelScale(n_stft=201, n_mels=80, sample_rate=16_000, f_min=0.0, f_max=8000.0, norm="slaney", mel_scale="slaney")
griffin = torchaudio.transforms.GriffinLim(n_fft=400, hop_length=160, power=2.0, n_iter=32)

fig, axes = plt.subplots(3, 2, figsize=(13, 7.5), layout="constrained")
players = []
for j, style in enumerate(("low", "high")):
    w = peak_normalize(resample(torch.from_numpy(assistant("three plus four is seven", "en", style).synthesize()[0]), 22_050, 16_000))
    s, f0_meas, f0_tok, rebuilt = from_tokens(w)
    t_ms = np.arange(len(s)) * 40 + 20
    axes[0, j].plot(t_ms, np.where(f0_meas > 0, f0_meas, np.nan), "k.-", label="measured F0")
    axes[0, j].plot(t_ms, np.where(f0_tok > 0, f0_tok, np.nan), ".--", color=COLORS["semantic"], label="F0 read from the semantic tokens")
    axes[0, j].set(title=f"assistant, {style} voice: median measured {median_f0(w, 16_000):.0f} Hz ({len(s)} tokens)",
                   ylabel="F0 (Hz)", xlabel="time (ms)", ylim=(50, 400), xlim=(0, len(s) * 40))
    axes[0, j].legend(fontsize=8)
    m = causal_log_mel(w)[: len(s) * 4]
    lo, hi = float(m.min()), float(m.max())
    im = axes[1, j].imshow(m.T, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi, extent=[0, len(s) * 40, 0, 80])
    axes[1, j].set(title="original log-mel", ylabel="mel bin")
    axes[2, j].imshow(rebuilt.T, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi, extent=[0, len(s) * 40, 0, 80])
    axes[2, j].set(title="log-mel rebuilt from the semantic tokens alone", ylabel="mel bin", xlabel="time (ms)")
    fig.colorbar(im, ax=axes[1:, j], label="log energy", fraction=0.04)
    with torch.no_grad():
        y = griffin(inv_mel(rebuilt.T.exp()))
    players.append((style, w, y))
plt.show()
for style, w, y in players:
    print(f"{style} voice: the original, then a Griffin-Lim rendering of the log-mel rebuilt from its semantic tokens")
    display(Audio(w.numpy(), rate=16_000))
    display(Audio((y / y.abs().max()).numpy(), rate=16_000))

# %% [markdown]
# Over the whole test split, the error of the F0 read back from the tokens, in semitones (12 log₂ of the ratio), on voiced tokens. **What you should see:** a median error under 2 semitones if the codes carry pitch; a code that ignored pitch would be off by about the spread of the voices' F0 (the male and female variants of notebook 00, about 90 and 185 Hz, differ by about 12 semitones).

# %%
test_clips = load_clips(corpus, "test", progress=False)
errs, n_voiced = [], 0
for c in test_clips:
    n = c.mel.shape[0] // 4
    lf, v = token_f0(c, 4)
    mel_c = torch.nn.functional.pad(c.mel, (0, 0, 0, sem.cfg.lookahead * 4), value=float(np.log(1e-5)))[None]
    with torch.no_grad():
        out = sem.decode(sem.vq.codebook[sem.codes_from_mel(mel_c, n)])
    mean, std = sem.logf0_mean_std
    pred = out["f0"][0] * std + mean
    errs.append((12 / np.log(2)) * (pred[v] - lf[v]).abs())
err = torch.cat(errs)
print(f"F0 read back from the semantic tokens, test split ({len(test_clips)} clips, {err.numel()} voiced tokens): "
      f"median error {err.median():.2f} semitones, 90th percentile {err.quantile(0.9):.2f}")

# %% [markdown]
# ## 4. The complementarity table
#
# Linear probes (logistic regression written in torch, `aqaa_ref.tokenizer.probes`) from each stream's codes — one-hot, in a window of ±2 linguistic tokens (300 ms) or ±3 semantic tokens (280 ms) — to the aligned phoneme, the pitch class (tertiles of the utterance's median F0), the voice and the speaking-rate class; trained on 1,500 training clips spread evenly over the split, scored on the whole test split. Phoneme labels come from a forced alignment with the *linguistic* CTC head, which favours the linguistic stream on that row.
#
# **What you should see, if the paper is right:** the linguistic stream ahead on phonemes; the semantic stream ahead on pitch and voice, by a wide margin; every probe above the majority class (always guessing the most frequent training label). Speaking rate is not named by the paper; a 300 ms window sees little of it, so expect both streams near the majority class there.

# %%
t0 = time.time()
table = probe_table(train_utts, test_utts, tok, steps=100 if QUICK else 300)
print(format_table(table))
print(f"({len(train_utts)} training clips, {len(test_utts)} test clips; {time.time() - t0:.0f} s)")
fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
targets = list(table)
for i, stream in enumerate(("linguistic", "semantic")):
    bars = ax.bar(np.arange(len(targets)) + 0.27 * (i - 0.5), [table[t][stream] for t in targets], width=0.27,
                  label=stream, color=COLORS[stream])
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
ax.scatter(np.arange(len(targets)), [max(table[t]["linguistic_majority"], table[t]["semantic_majority"]) for t in targets], marker="_", s=400, c="k", label="majority class")
ax.set(xticks=range(len(targets)), xticklabels=targets, xlabel="probe target", ylabel="test accuracy", ylim=(0, 1.05),
       title=f"linear probes from codes (test split, n = {len(test_utts)} clips)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The paper's prediction holds for phonemes (linguistic 0.891 against semantic 0.668) and for pitch and voice (semantic 0.834 and 0.492 against 0.422 and 0.258), and every probe beats the majority class. The semantic stream still carries a good deal of phonemic content: its training includes a CTC phoneme loss, like CosyVoice's supervised tokenizer. Speaking rate contradicts part of the prediction: the semantic stream is near the majority class (0.508 against 0.491 for always guessing "normal"), but the *linguistic* stream is 8 points above it (0.573). In a 300 ms window, rate shows up as how many phonemes pass, which is phonemic information, and that is what the linguistic codes hold. Rate is a property of the token *sequence* (how long each phoneme lasts), which a per-window linear probe barely sees; the backbone and the vocoder see the whole sequence.
#
# ## 5. Interleaving 2:3, with real ids
#
# One group = 2 linguistic + 3 semantic tokens = 120 ms. Ids: text first, then the linguistic codes, then the semantic codes (`AudioVocab`); the incomplete tail group is dropped, `G = min(len(l) // 2, len(s) // 3)`. First on a fixed example (a tokenizer with the tiny sizes and a text vocabulary of 1,000, so the ids are the same in every mode), then on the clip from section 1 with the trained tokenizer.
#
# **What you should see:** 7 linguistic and 10 semantic codes make G = min(3, 3) = 3 groups, 15 ids: linguistic code c becomes 1000 + c, semantic code c becomes 1016 + c; de-interleaving gives back the first 6 and 9 codes (the 7th L and 10th S were the incomplete tail). Then each malformed sequence is refused with the position that is wrong.

# %%
# NBVAL_CHECK_OUTPUT
inv0 = PhonemeInventory(("a", "b"))
demo = DualTokenizer(LinguisticTokenizer(LinguisticConfig.from_preset("tiny"), inv0), SemanticTokenizer(SemanticConfig.from_preset("tiny"), inv0), text_vocab_size=1000)
print(demo.vocab)
g = torch.Generator().manual_seed(0)
l, s = torch.randint(16, (7,), generator=g), torch.randint(16, (10,), generator=g)
ids = demo.interleave(l, s)
print("linguistic codes:", l.tolist())
print("semantic codes:  ", s.tolist())
print(f"G = min(7 // 2, 10 // 3) = {len(ids) // 5} groups")
print("interleaved ids: ", ids.view(-1, 5).tolist())
l2, s2 = demo.deinterleave(ids)
print("de-interleaved:  ", l2.tolist(), s2.tolist())

# %%
# NBVAL_CHECK_OUTPUT
for bad in ([1000, 1001, 1016, 1017], [1000, 1016, 1016, 1017, 1018], [1000, 1001, 1016, 1017, 1032], [7, 1001, 1016, 1017, 1018]):
    try:
        demo.deinterleave(torch.tensor(bad))
    except ValueError as e:
        print(f"{str(bad):<32} -> ValueError: {e}")

# %% [markdown]
# **What you should see** on the 1.85 s clip of section 1: 30 linguistic and 46 semantic codes give G = min(15, 15) = 15 groups, 75 ids, with 0 L and 1 S dropped; linguistic ids in `[1024, 1280)`, semantic in `[1280, 1792)`.

# %%
l, s = tok.encode(x)
ids = tok.encode_interleaved(x)
# the layout re-derived by hand, against the library
G = min(len(l) // 2, len(s) // 3)
by_hand = []
for gi in range(G):
    by_hand += [tok.vocab.linguistic_offset + int(c) for c in l[2 * gi: 2 * gi + 2]]
    by_hand += [tok.vocab.semantic_offset + int(c) for c in s[3 * gi: 3 * gi + 3]]
assert ids.tolist() == by_hand
n_show = 6
fig, ax = plt.subplots(figsize=(13, 2.6), layout="constrained")
for i, v in enumerate(ids[: 5 * n_show].tolist()):
    stream = "linguistic" if i % 5 < 2 else "semantic"
    ax.add_patch(plt.Rectangle((i, 0), 0.95, 1, color=COLORS[stream]))
    ax.text(i + 0.47, 0.5, str(v), ha="center", va="center", fontsize=8, rotation=90, color="w")
for gi in range(n_show):
    ax.text(gi * 5 + 2.4, -0.25, f"group {gi}: {gi * 120}-{gi * 120 + 120} ms", ha="center", fontsize=8)
handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[k]) for k in ("linguistic", "semantic")]
ax.legend(handles, [f"linguistic: id = {tok.vocab.linguistic_offset} + code", f"semantic: id = {tok.vocab.semantic_offset} + code"],
          fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
ax.set(xlim=(0, 5 * n_show), ylim=(-0.5, 1.1), yticks=[], xticks=[], xlabel="position in the id sequence (5 per group)",
       title=f"the first {n_show} LLSSS groups of the clip ({G} groups in all)")
plt.show()
print(f"{T} samples -> {len(l)} linguistic + {len(s)} semantic codes -> {G} groups = {len(ids)} ids; dropped tail: {len(l) - 2 * G} L, {len(s) - 3 * G} S")

# %% [markdown]
# ## 6. Any length, any rate, stereo, silence
#
# A clip of `T` samples at 16 kHz gives `T // 960` linguistic and `T // 640` semantic tokens (within one token of 16.67 and 25 per second); shorter than one group (120 ms) gives an empty interleaved sequence. Other sample rates are resampled to 16 kHz, channels averaged, everything peak-normalised like Step-Audio.
#
# **What you should see:** L = ⌊16.67 t⌋ and S = ⌊25 t⌋ in every row, and 5 × min(L // 2, S // 3) ids: 0 below 0.12 s, then 5 ids at exactly 0.12 s, 415 for 10 s (83 whole groups of the 83.3 that fit: the partial group at the end is dropped).

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
print(f"{'seconds':>8} {'L':>5} {'16.67 t':>8} {'S':>5} {'25 t':>7} {'ids':>5}")
for sec in (0.05, 0.1, 0.119, 0.12, 0.25, 1.0, 2.345, 10.0):
    n = int(sec * 16_000)
    l_, s_ = tok.encode(torch.randn(n, generator=g) * 0.1)
    print(f"{sec:8.3f} {len(l_):5d} {sec * 50 / 3:8.2f} {len(s_):5d} {sec * 25:7.2f} {len(tok.interleave(l_, s_)):5d}")

# %% [markdown]
# **What you should see:** stereo of two identical channels gives the mono codes; the counts do not depend on the input rate (the audio is resampled to 16 kHz first); the codes at 22.05, 44.1 and 48 kHz agree with the 16 kHz codes almost everywhere in the linguistic stream and less in the semantic stream (the resampling round trip changes fine acoustic detail, which is what the semantic codes keep); at 8 kHz, with nothing above 4 kHz left, both agree much less. Silence: one code per stream once the receptive field has passed.

# %%
l, s = tok.encode(x)
stereo = tok.encode(torch.stack([x, x]), 16_000)
print("stereo (2, T) of the same clip gives the same codes:", torch.equal(stereo[0], l) and torch.equal(stereo[1], s))
for rate in (8_000, 22_050, 44_100, 48_000):
    l2, s2 = tok.encode(resample(x, 16_000, rate), rate)
    n, m = min(len(l), len(l2)), min(len(s), len(s2))
    print(f"{rate:>6} Hz input: {len(l2)} L / {len(s2)} S codes; agreement with the 16 kHz codes: "
          f"L {(l[:n] == l2[:n]).float().mean():.2f}, S {(s[:m] == s2[:m]).float().mean():.2f}")
ls, ss = tok.encode(torch.zeros(32_000))
rf_l, rf_s = tok.linguistic.encoder.receptive_field, tok.semantic.encoder.receptive_field
print(f"2 s of silence: after the receptive fields ({rf_l} L / {rf_s} S tokens), {len(set(ls[rf_l:].tolist()))} distinct L code "
      f"and {len(set(ss[rf_s:].tolist()))} distinct S code (before: {len(set(ls.tolist()))} / {len(set(ss.tolist()))}, the zero padding of the causal convolutions)")
try:
    tok.encode(torch.zeros(0))
except AudioError as e:
    print("empty input -> AudioError:", e)

# %% [markdown]
# ## 7. Batch encoding, speed, save and load
#
# **What you should see:** the whole test split (521 clips, about 12 minutes of audio) encoded more than 10 times faster than real time on one thread (the timing depends on how busy the machine is); the batch codes equal to clip-by-clip encoding; two files saved (config and weights) that load back to the same ids.

# %%
waves = [corpus.load(r, sample_rate=16_000) for _, r in corpus.utterances("test")]
seconds = sum(w.numel() for w in waves) / 16_000
t0 = time.time()
batch = tok.encode_batch(waves)
dt = time.time() - t0
print(f"encoded {len(waves)} clips = {seconds / 60:.1f} min of audio in {dt:.1f} s: {seconds / dt:.0f}x real time (1 thread, shared machine)")
assert all(torch.equal(b[0], tok.encode(w)[0]) and torch.equal(b[1], tok.encode(w)[1]) for b, w in zip(batch[:20], waves[:20]))

with tempfile.TemporaryDirectory() as d:
    tok.save(d)
    print(sorted(os.listdir(d)))
    back = DualTokenizer.load(d)
    print("same ids after save/load:", all(torch.equal(back.encode_interleaved(w), tok.encode_interleaved(w)) for w in waves[:20]))

# %% [markdown]
# ## Summary
#
# The semantic stream is the linguistic stream's complement: a VQ bottleneck trained to rebuild the mel and the pitch (and, with a small weight, the phonemes) from 25 Hz codes, so the codes keep *how* something was said, which a CTC encoder throws away. The linear probes measure the split the paper claims: phonemes are best read from the linguistic codes, pitch and voice from the semantic ones. The backbone reads both through one id sequence, 2 linguistic + 3 semantic ids per 120 ms, offset after the text vocabulary, the incomplete tail dropped. Measured on the toy preset (full run):
#
# | | |
# |---|---|
# | semantic tokenizer | 25 Hz, causal encoder (d = 128, 4 blocks) + EMA VQ **K = 512** (paper: 4,096) x 32 dims, 40 ms lookahead; decoder (2 blocks) + mel / F0 / CTC heads for training only; 0.52M parameters in all |
# | training | 350 steps, one thread, in a second process beside the linguistic encoder: 784 s wall clock on a heavily shared 2-core machine |
# | codebook | 503/512 codes used on the test split, perplexity 332 (linguistic: 256/256, perplexity 214); 499 dead codes re-seeded during training |
# | pitch kept | F0 read back from the tokens alone: median error 1.37 semitones (90th percentile 4.58) |
#
# The complementarity table (test accuracy of linear probes on one-hot codes):
#
# | target | linguistic | semantic | majority |
# |---|---|---|---|
# | phoneme | **0.891** | 0.668 | 0.085 |
# | pitch class | 0.422 | **0.834** | 0.366 |
# | voice (8 seen voices: the 7 question voices and the assistant's f2) | 0.258 | **0.492** | 0.167 |
# | speaking rate | **0.573** | 0.508 | 0.491 |
#
# Semantic K = 512 rather than 4,096: at 25 Hz the toy training set has ~200k semantic tokens; 512 codes are 98.2 % used with perplexity 332, so a larger codebook would mostly hold rare codes that the small backbone has to learn to predict. The toy tokenizer was not retrained with other K (each VQ training costs minutes); Exercise 1 sweeps K by refitting only the codebook, and finds the reconstruction errors flat beyond 512.
#
# Next: [03 backbone + vocab](03_backbone_and_vocabulary.ipynb) builds the Step-1 decoder that reads these interleaved ids, and extends its text vocabulary by the 256 + 512 audio ids.

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing the notebook names and predicts its effect. None retrains the tokenizer (that costs minutes): they refit a codebook by k-means, encode, or fit small probes, each in well under a minute (seconds in quick mode, where the tiny tokenizer gives other numbers).

# %% [markdown]
# ### Exercise 1: sweep the semantic codebook size K
#
# The toy K = 512 was chosen, not measured; the paper uses 4,096. Retraining the tokenizer at every K costs minutes each, so sweep K the cheap way: keep the trained encoder and decoder, and refit only the codebook, by k-means on the encoder's pre-quantization vectors z of 300 training clips (about 12,000 vectors), for K = 16, 64, 256, 512, 1,024 and 4,096. Score each codebook on 100 test clips: codes used, perplexity, the mel reconstruction error (L1 on the normalised log-mel, what the mel head is trained on) and the median F0 error of section 3, beside the shipped codebook and beside no quantization at all (decoding z itself). Predict the shape of the curves, and what happens to the paper's K with this much data.
#
# **Expected** (11,892 training vectors, 100 test clips): mel L1 0.526 / 0.495 / 0.480 / 0.474 / 0.472 / 0.467 and median F0 error 1.86 / 1.63 / 1.45 / 1.42 / 1.37 / 1.35 semitones for K = 16 / 64 / 256 / 512 / 1,024 / 4,096; the shipped codebook 0.474 and 1.39, no quantization 0.459 and 1.27. Both errors fall with K and flatten: 16 → 512 codes buys 0.052 of mel L1 and 0.44 semitones, 512 → 4,096 only 0.007 and 0.07. Every code is used up to K = 256, 502 of 512 and 924 of 1,024 above it; at K = 4,096 the 12k vectors are 3 per code, and only 2,109 codes turn up on the test clips (perplexity 1,800). So 512 gets most of what a codebook can give this encoder, and the paper's 4,096 needs far more data than the toy corpus has (caveat: the encoder and decoder were trained with K = 512, so this measures the codebook alone, not what training at each K would learn).

# %% tags=["solution"] jupyter={"source_hidden": true}
from aqaa_ref.tokenizer import assign, fit_kmeans

def z_of(clip):                                   # pre-quantization vectors (N, 32) of one clip
    mel_c = torch.nn.functional.pad(clip.mel, (0, 0, 0, sem.cfg.lookahead * 4), value=float(np.log(1e-5)))[None]
    with torch.no_grad():
        return sem.embed(mel_c, clip.mel.shape[0] // 4)[0].float()

def score(codebook, quantize=True):
    """codes used, perplexity, mel L1 and median F0 error (semitones) of a codebook on the test sample"""
    mean, std = sem.logf0_mean_std
    codes_, l1, f0_err = [], [], []
    for clip, z in zip(ex_test, ex_z):
        cc = assign(z, codebook)
        codes_.append(cc)
        with torch.no_grad():
            out = sem.decode((codebook[cc] if quantize else z)[None])
        target = (clip.mel[: 4 * len(cc)] - sem.mel_mean) / sem.mel_std
        l1.append((out["mel"][0] - target).abs().mean(1))
        lf, v = token_f0(clip, 4)
        f0_err.append((12 / np.log(2)) * (out["f0"][0] * std + mean - lf)[v].abs())
    h = usage_stats(torch.cat(codes_), codebook.shape[0])
    errors = f"mel L1 {torch.cat(l1).mean():.3f}  F0 error {torch.cat(f0_err).median():.2f} st"
    return errors if not quantize else f"used {h['used']:4d}/{codebook.shape[0]:<4d} perplexity {h['perplexity']:6.1f}  {errors}"

ex_train_z = torch.cat([z_of(c) for c in load_clips(corpus, "train", limit=40 if QUICK else 300, progress=False)])
ex_test = strided(test_clips, 20 if QUICK else 100)
ex_z = [z_of(c) for c in ex_test]
print(f"{len(ex_train_z)} training vectors, {len(ex_test)} test clips")
for k in ((4, 16) if QUICK else (16, 64, 256, 512, 1024, 4096)):
    print(f"K = {k:4d} (refit):   {score(fit_kmeans(ex_train_z, k, iters=8, seed=0))}")
print(f"K = {sem.cfg.codebook_size:4d} (shipped): {score(sem.vq.codebook)}")
print(f"no quantization (z decoded as it is):                 {score(sem.vq.codebook, quantize=False)}")

# %% [markdown]
# ### Exercise 2: the same sentence, low and high
#
# Pitch should move the semantic codes and leave the linguistic codes alone. Have the assistant say "three plus four is seven" in its low, normal and high voice (pitch 15, 50, 85: the same timing, notebook 00), encode each, and count at how many positions the codes of "low" and of "high" equal those of "normal", per stream.
#
# **Expected:** linguistic codes: 20 (low) and 19 (high) of 24 positions equal those of "normal" (0.83, 0.79); semantic codes: 9 and 6 of 36 (0.25, 0.17). Pitch changes three quarters or more of the semantic codes and about a fifth of the linguistic ones: the linguistic stream is not perfectly pitch-blind, but it is far closer to it.

# %% tags=["solution"] jupyter={"source_hidden": true}
enc = {}
for style in ("low", "normal", "high"):
    w = peak_normalize(resample(torch.from_numpy(assistant("three plus four is seven", "en", style).synthesize()[0]), 22_050, 16_000))
    enc[style] = tok.encode(w)
for i, stream in enumerate(("linguistic", "semantic")):
    ref = enc["normal"][i]
    for style in ("low", "high"):
        other = enc[style][i]
        n = min(len(ref), len(other))
        print(f"{stream:<10} {style:<4} vs normal: {int((ref[:n] == other[:n]).sum()):3d} of {n} positions share a code "
              f"({(ref[:n] == other[:n]).float().mean():.2f})")

# %% [markdown]
# ### Exercise 3: how much context does the pitch probe need?
#
# The probes of section 4 read a window of ±3 semantic tokens (280 ms). Refit the semantic pitch and phoneme probes with a window of ±0 (one token, 40 ms) and ±3, on 300 of the training clips and 150 probe steps (cheaper than section 4, so the ±3 numbers come out a little lower than the table's). Predict which target loses more when the window shrinks.
#
# **Expected:** window ±0: phoneme 0.271, pitch 0.689; window ±3: phoneme 0.554, pitch 0.796 (below the table's 0.668 and 0.834: fewer clips and steps). The phoneme probe loses half its accuracy without context, the pitch probe 11 points: one 40 ms token already tells the utterance's pitch class (every voiced token carries it), while a phoneme needs its neighbours, because a semantic code is not a phoneme label.

# %% tags=["solution"] jupyter={"source_hidden": true}
few = strided(train_utts, 30 if QUICK else 300)
for w_ in (0, 3):
    t0 = time.time()
    tab = probe_table(few, test_utts, tok, windows_={"linguistic": 2, "semantic": w_}, steps=50 if QUICK else 150,
                      streams=("semantic",), targets=("phoneme", "pitch"))
    print(f"semantic window +-{w_}: phoneme {tab['phoneme']['semantic']:.3f}, pitch {tab['pitch']['semantic']:.3f}  "
          f"({time.time() - t0:.0f} s)")
