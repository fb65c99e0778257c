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
# # 01 · The linguistic tokenizer: 16.67 Hz codes from a CTC phoneme encoder
#
# [← 00 data engine](00_data_engine.ipynb) · **01** · [02 semantic tok. + 2:3 groups →](02_semantic_tokenizer_and_interleaving.ipynb) · paper: *Dual-codebook audio tokenizer (linguistic)* ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967))
#
# **You will build** the first of the two audio token streams the backbone reads: a small causal encoder trained with CTC to recognise phonemes, whose 60 ms outputs k-means turns into 16.67 Hz codes, and a streaming encoder whose 240 ms chunks give exactly the offline codes.
#
# **Prerequisites** [00 data engine](00_data_engine.ipynb) (the corpus, its voices and its test conditions). CTC and k-means are introduced here; a log-mel spectrogram was drawn in 00.
#
# **Run time** (2-core CPU, measured): warm about 1 min, cold about 3 min 20 s (cold: training the dual tokenizer of notebooks 01 and 02 once, both streams side by side, then cached; and the toy corpus, if notebook 00 has not built it).

# %%
from aqaa_ref.viz import roadmap
_ = roadmap(1)

# %% [markdown]
# **What the paper does.** Step-Audio-AQAA hears speech through two token streams (the paper's dual-codebook audio tokenizer, [arXiv 2506.08967](https://arxiv.org/abs/2506.08967)). The first, the *linguistic* stream, runs at **16.67 Hz** (one token per 60 ms) with **1,024 codes**: the output of a **Paraformer** ASR encoder, quantized. In the released code (the Step-Audio repository, `github.com/stepfun-ai/Step-Audio`, `tokenizer.py`) the quantizer is a stored table of 1,024 k-means centroids and a Euclidean argmin, not a learned VQ layer. Its job is phonemic content: what was said.
#
# **What we do.** The same recipe at toy scale, trained from scratch on our synthetic speech (notebook 00):
#
# 1. a *causal* log-mel (10 ms frames that never look ahead), 6 frames stacked into one 60 ms vector (Paraformer's low-frame-rate trick);
# 2. a small causal ConvNeXt-1D encoder trained with **CTC on eSpeak phonemes** of all four languages; because fast speech has more than 16.67 phonemes per second, the CTC head reads each 60 ms vector as three 20 ms slots;
# 3. **k-means** (k-means++ then Lloyd, written in torch) on the encoder outputs; a token is the index of the nearest centroid.
#
# Everything is causal except a fixed 60 ms lookahead, so encoding a live stream in Step-Audio's 240 ms chunks gives *exactly* the offline tokens (section 8).
#
# `QUICK` mode (CI) trains the *tiny* config on the tiny corpus in seconds; the full run loads the *toy* tokenizer that `load_or_train_dual` trained and cached. Numbers in the text are from the full run.

# %%
import os, time
from collections import Counter
from dataclasses import replace

import torch
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from IPython.display import Audio, display

from aqaa_ref.audio import resample, peak_normalize
from aqaa_ref.data import synthesize, phoneme_tokens, build_corpus, CorpusConfig
from aqaa_ref.data.styles import UNSEEN_VOICE
from aqaa_ref.tokenizer import (DualConfig, DualTokenizer, load_or_train_dual, training_log, causal_log_mel, assign,
                                fit_kmeans, usage_stats, load_clips, CHUNK_SAMPLES)
from aqaa_ref.tokenizer.kmeans import kmeans_plus_plus
from aqaa_ref.tokenizer.ctc import greedy_decode, forced_align, phoneme_error_rate
from aqaa_ref.data import strided
from aqaa_ref.tokenizer.linguistic import describe, encoder_outputs
from aqaa_ref.tokenizer.probes import collect, per_by_voice, codebook_usage, probe_table
from aqaa_ref.viz import COLORS

QUICK = os.environ.get("AQAA_QUICK") == "1"   # CI sets this: tiny corpus, tiny tokenizer, same code
PRESET = "tiny" if QUICK else "toy"
print("quick mode" if QUICK else "full mode", "| preset:", PRESET)

# %% [markdown]
# ## 1. A causal log-mel
#
# `aqaa_ref.audio.log_mel` centres its 25 ms window on each frame, peeking 12.5 ms into the future. For streaming we want each frame to *end* where its 10 ms hop ends: frame *i* covers samples `[160 i − 240, 160 i + 160)`. A clip of *T* samples then has exactly `T // 160` frames, `T // 960` linguistic tokens and `T // 640` semantic tokens, and a prefix of the audio gives a prefix of the frames.
#
# **What you should see:** the sentence of notebook 00 (1.28 s) resampled to 16 kHz is 20,495 samples, so 128 mel frames, 21 linguistic and 32 semantic tokens; and `True` for the prefix: the first 0.6 s of audio give exactly the first 60 frames.

# %%
# NBVAL_CHECK_OUTPUT
wav22, sr, phonemes = synthesize("what is three plus four", language="en", voice="m1", rate=175, pitch=50)
x = peak_normalize(resample(torch.from_numpy(wav22), sr, 16_000))     # Step-Audio's pre-processing
mel = causal_log_mel(x)                                                # (T // 160, 80)
T = x.numel()
print(f"samples at 16 kHz: {T} ({T / 16_000:.3f} s)")
print("mel:", tuple(mel.shape), "= (T // 160, 80):", mel.shape[0] == T // 160)
print("linguistic tokens T // 960 =", T // 960, "| semantic tokens T // 640 =", T // 640)
print("a prefix of the audio gives a prefix of the frames:", torch.allclose(causal_log_mel(x[:9600]), mel[:60], atol=1e-5))
print("phonemes (CTC targets):", phoneme_tokens(phonemes))

# %%
fig, ax = plt.subplots(figsize=(11, 3), layout="constrained")
im = ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma", extent=[0, mel.shape[0] * 10, 0, 80])
for t in range(0, mel.shape[0] * 10 + 1, 60):
    ax.axvline(t, color="w", lw=0.4, alpha=0.6)
ax.set(xlabel="time (ms)", ylabel="mel bin", title=f"causal log-mel; white lines = one linguistic token (60 ms) each, {T // 960} tokens")
fig.colorbar(im, ax=ax, label="log energy")
plt.show()
display(Audio(x.numpy(), rate=16_000))

# %% [markdown]
# ## 2. Train it (one call)
#
# `load_or_train_dual(corpus, DualConfig.from_preset(...))` trains both tokenizers (this notebook looks at the linguistic one; notebook 02 at the semantic one) and caches the result under `.cache/tokenizer/<preset>-<hash of both configs and the corpus config>`; a second call loads it. The phoneme inventory is every phoneme eSpeak produced for the training split, in all four languages, plus `<blank>` and `<unk>`.

# %%
corpus = build_corpus(CorpusConfig.from_preset(PRESET), progress=False)
cfg = DualConfig.from_preset(PRESET)
t0 = time.time()
tok = load_or_train_dual(corpus, cfg, progress=False)
print(f"load_or_train_dual: {time.time() - t0:.1f} s")
print(tok)
print(describe(tok.linguistic))
inv = tok.linguistic.inventory
print(f"{len(inv)} CTC classes, e.g.", inv.phonemes[:12], "...", inv.phonemes[-6:])

# %% [markdown]
# **What you should see:** an untrained CTC head spreads its probability over all 112 classes, so the loss (per target phoneme) starts above 10; a working encoder drives it down by well over an order of magnitude, to below 0.5 by the last step (350), noisy from batch to batch.

# %%
log = training_log(corpus, cfg)
steps = [r["step"] for r in log["linguistic"]]
loss = [r["loss"] for r in log["linguistic"]]
fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
ax.plot(steps, loss, color=COLORS["linguistic"])
ax.set(yscale="log", xlabel="step", ylabel="CTC loss (per batch)", title=f"linguistic encoder: CTC on phonemes ({len(steps)} steps)")
plt.show()
print(f"CTC loss: first step {loss[0]:.1f}, mean of the last 20 steps {sum(loss[-20:]) / len(loss[-20:]):.2f}")
print({k: f"{v:.0f} s" for k, v in log.items() if k.endswith("_seconds")}, "(wall clock and CPU time, shared 2-core machine)")

# %% [markdown]
# As predicted: 14.2 at the first step, 0.31 over the last 20 steps, 46 times lower. (The wall-clock times are those of the run that trained the cached tokenizer, on a heavily shared machine: 840 s for 107 s of CPU time.)
#
# ## 3. The CTC head reads 60 ms as three 20 ms slots
#
# English at 270 words per minute reaches 15-18 phonemes per second, and CTC needs at least one output step per phoneme (two for a doubled one). So the head maps each encoder vector `h_t` (one per 60 ms) to `3 × C` logits, reshaped into three 20 ms slots. The encoder vector — the thing k-means quantizes — must therefore hold *everything* said in its 60 ms.
#
# **What you should see:** 21 encoder vectors of width 160 and 63 slots of 112 log-probabilities; on this clip (a training voice at a training rate) the greedy CTC decoding should equal the reference, all 14 phonemes.

# %%
lin = tok.linguistic
xp = torch.nn.functional.pad(x, (0, lin.lookahead_samples))   # the lookahead: 60 ms of silence after the end
with torch.no_grad():
    h = lin.hidden(causal_log_mel(xp)[None], T // 960)            # (1, N, d)
    lp = lin.ctc_log_probs(h)                                     # (1, 3N, C)
print("encoder output h:", tuple(h.shape), "| CTC log-probs:", tuple(lp.shape))
print("reference :", " ".join(phoneme_tokens(phonemes)))
print("greedy CTC:", " ".join(inv.decode(greedy_decode(lp[0]))))

# %% [markdown]
# ## 4. k-means: nearest centroid, re-derived
#
# A token is `argmin_k |h_t − c_k|²`. Below, the library's `assign` (which expands the square as `|h|² − 2 h·c + |c|²`, in chunks) against a brute-force loop; then k-means++ seeding on a 2-D toy so the idea is visible.

# %%
codes = assign(h[0], lin.centroids)
brute = torch.stack([((h[0] - c) ** 2).sum(1) for c in lin.centroids], dim=1).argmin(1)
assert torch.equal(codes, brute)
assert torch.equal(codes, tok.encode(x)[0])
print("linguistic codes of the clip:", codes.tolist())

# %% [markdown]
# **What you should see:** four blobs of 200 points around (0, 0), (3, 0), (0, 3) and (3, 3), spread 0.3: k-means with K = 4 should find the four centres (rounded) and put exactly 200 points in each cluster.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
blobs = torch.cat([torch.randn(200, 2, generator=g) * 0.3 + torch.tensor(c) for c in [(0, 0), (3, 0), (0, 3), (3, 3)]])
seeds = kmeans_plus_plus(blobs, 4, torch.Generator().manual_seed(1))
cents = fit_kmeans(blobs, 4, iters=5, seed=1)
found = sorted(tuple(round(v) for v in c.tolist()) for c in cents)
print("centroids found (rounded):", found)
print("cluster sizes:", sorted(torch.bincount(assign(blobs, cents), minlength=4).tolist()))

# %%
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
ax.scatter(*blobs.T, s=4, c=assign(blobs, cents), cmap="tab10")
ax.scatter(*seeds.T, marker="x", c="k", s=60, label="k-means++ seeds")
ax.scatter(*cents.T, marker="*", c="r", s=150, label="after 5 Lloyd steps")
ax.set(xlabel="x₁", ylabel="x₂", title=f"k-means, K = 4, n = {len(blobs)} points")
ax.legend(loc="center")
plt.show()


# %% [markdown]
# ## 5. Token timelines: a seen voice and the unseen voice
#
# Two test questions: one by a training voice, one by `m4`, a voice never heard in training. Above each spectrogram: the reference phonemes placed by a forced alignment of the CTC head (each at the 20 ms slot where its path starts; alternate phonemes on two lines so they do not overlap). Below it: the linguistic code of each 60 ms token.
#
# **What you should see:** the aligned phonemes on the matching stretches of the spectrogram (fricatives such as `s`, `z`, `f` on the high-frequency noise, vowels on the harmonics), and a code per 60 ms that changes almost every token: a code stands for a 60 ms stretch in its context, not for a phoneme label, so even a long vowel rarely repeats a code.

# %%
def timeline(speech, rendering, sf):
    """One test question: aligned phonemes, log-mel, linguistic codes, drawn in subfigure ``sf``."""
    w = tok.prepare(corpus.load(rendering, sample_rate=16_000))
    l, _ = tok.encode(w)
    m = causal_log_mel(w)
    with torch.no_grad():
        lp = lin.ctc_log_probs(lin.hidden(causal_log_mel(torch.nn.functional.pad(w, (0, lin.lookahead_samples)))[None], len(l)))[0]
    ref = inv.encode(phoneme_tokens(rendering.phonemes))
    starts = forced_align(lp, ref) or []
    ax_p, ax_m, ax_c = sf.subplots(3, 1, sharex=True, height_ratios=[0.6, 3, 0.8])
    for j, (p, s) in enumerate(zip(inv.decode(ref), starts)):
        t = s * 20 + 10
        ax_p.plot([t, t], [0, 0.12], color="k", lw=0.6)
        ax_p.text(t, 0.38 if j % 2 else 0.78, p, ha="center", va="center", fontsize=9)
    ax_p.set(ylim=(0, 1.05), yticks=[])
    ax_p.tick_params(bottom=False)
    ax_p.set_ylabel("phoneme", rotation=0, ha="right", va="center", fontsize=8)
    ax_p.set_title(f"{speech.voice} ({'unseen' if speech.voice == UNSEEN_VOICE else 'seen'} voice), {speech.rate} wpm: "
                   f"\"{speech.text}\"  ({len(ref)} phonemes, {len(l)} tokens)", fontsize=10)
    im = ax_m.imshow(m.T, origin="lower", aspect="auto", cmap="magma", extent=[0, m.shape[0] * 10, 0, 80])
    for i in range(len(l) + 1):
        ax_m.axvline(i * 60, color="w", lw=0.3, alpha=0.5)
    ax_m.set(ylabel="mel bin")
    ax_m.tick_params(bottom=False)
    for i, c in enumerate(l.tolist()):
        ax_c.add_patch(Rectangle((i * 60 + 2, 0), 56, 1, color=COLORS["linguistic"], alpha=0.9 if i % 2 else 0.6, lw=0))
        ax_c.text(i * 60 + 30, 0.5, str(c), ha="center", va="center", fontsize=7, rotation=90)
    ax_c.set(ylim=(0, 1), yticks=[], xlabel="time (ms)", xlim=(0, m.shape[0] * 10))
    ax_c.set_ylabel("code", rotation=0, ha="right", va="center", fontsize=8)
    sf.colorbar(im, ax=[ax_p, ax_m, ax_c], label="log energy", fraction=0.025, pad=0.01)
    return w, l

def pick(condition):
    item = next(it for it in corpus.split("test", condition=condition) if it.language == "en")
    return item.question, item.question_audio

fig = plt.figure(figsize=(13, 8.5), layout="constrained")
drawn = [timeline(*pick(c), sf) for c, sf in zip(["seen", "unseen_voice"], fig.subfigures(2, 1, hspace=0.04))]
plt.show()
for w, l in drawn:
    print(f"{len(l)} tokens, {sum(int(a == b) for a, b in zip(l[:-1], l[1:]))} of {len(l) - 1} neighbours share a code")
    display(Audio(w.numpy(), rate=16_000))

# %% [markdown]
# As predicted: in neither clip do two neighbouring tokens share a code (0 of 31 and 0 of 20), not even in the long vowels at the ends of "zero" and "five". The aligned fricatives (`z`, `f`) sit at the starts of noise bands (a CTC alignment marks the slot where a phoneme is detected, not its whole extent). The unseen voice's codes look no different in kind from the seen voice's.
#
# ## 6. Phoneme error rate: seen voices vs the unseen voice
#
# Greedy CTC decoding on every distinct clip of the test split (questions by the seven training voices and by `m4`; answers by the assistant voice `f2`), corpus-level PER = edit distance / reference length. The test split also holds rates and pitches outside the training grids (`unseen_prosody`).
#
# **What you should see:** if the encoder learned phonemes rather than voices, the unseen voice `m4` should not score clearly worse than the seen voices: no more than 3 points above them.

# %%
t0 = time.time()
test_utts = collect(tok, corpus, "test")
per = per_by_voice(test_utts)
for k, v in per.items():
    print(f"{k:<20} {v['clips']:4d} clips   PER {100 * v['per']:.1f}%")
print(f"({time.time() - t0:.0f} s)")

# %% [markdown]
# The prediction holds, and more: the unseen voice does *better* (6.1 % against 9.8 %), which says more about what the groups hold than about voices: the seen group also holds the assistant's styled answers (personas, very slow and fast speech, one-word answers) and most of the non-English clips. Split by kind of speech:

# %%
def per_of(us):
    return f"{100 * phoneme_error_rate([u.hyp for u in us], [u.ref for u in us]):5.1f}% ({len(us)} clips)"
for who, us in (("seen voices", [u for u in test_utts if u.voice != UNSEEN_VOICE]), (f"unseen voice {UNSEEN_VOICE}", [u for u in test_utts if u.voice == UNSEEN_VOICE])):
    print(who)
    for name, keep in (("  English, 130-230 wpm", lambda u: u.language == "en" and 130 <= u.rate <= 230),
                       ("  English, < 130 or > 230 wpm", lambda u: u.language == "en" and not 130 <= u.rate <= 230),
                       ("  Mandarin, Cantonese, Japanese", lambda u: u.language != "en")):
        sel = [u for u in us if keep(u)]
        if sel:
            print(f"{name:<34} PER {per_of(sel)}")
print("training clips per language:", dict(Counter(sp.language for sp, _ in corpus.utterances("train"))))

# %% [markdown]
# On the same kind of speech (English at 130-230 wpm) the seen voices score 7.3 % and `m4` 4.9 %: the unseen voice costs nothing measurable here. The non-English clips (28.7 % on seen voices) are where the errors are: only 731 training clips (of 5,115) cover the three other languages. (The `m4` rows outside the training rate range hold 2 and 9 clips: too few to read anything into.)
#
# ## 7. Codebook usage, and why the toy codebook has 256 codes, not 1,024
#
# The paper uses 1,024 centroids; the toy preset uses **256**. The measurement behind that choice: refit k-means with several K on the same encoder outputs (800 training clips, evenly spaced over the split), then look at codebook health on the test split (fraction used, perplexity) and at how well a linear probe recovers the aligned phoneme from the codes (window of ±2 tokens). With only ~130k linguistic tokens in the toy training set, a larger K spreads the backbone's training signal over more embeddings.
#
# **What you should see:** the shipped 256 codes all in use on the test split, with a perplexity (the effective number of equally used codes) well above the 112 phoneme classes; in the sweep, every K nearly fully used, and a phoneme probe accuracy that rises with K by a few points at most (under 5 from K = 128 to 1,024): the codes hold the phonemes already at 128, more codes only split them finer.

# %%
u = codebook_usage(test_utts, tok)["linguistic"]
counts = torch.bincount(torch.cat([t.linguistic for t in test_utts]), minlength=tok.vocab.n_linguistic)
fig, ax = plt.subplots(figsize=(8, 2.8), layout="constrained")
ax.bar(range(len(counts)), counts.sort(descending=True).values, width=1.0, color=COLORS["linguistic"])
ax.set(xlabel="code (sorted by frequency)", ylabel="count",
       title=f"linguistic codes on the test split (n = {int(counts.sum())} tokens): {u['used']}/{u['codes']} used, perplexity {u['perplexity']:.0f}")
plt.show()

# %%
n_train = 40 if QUICK else 800
train_clips = load_clips(corpus, "train", limit=n_train, with_f0=False, progress=False)
feats = encoder_outputs(lin, train_clips)                       # (tokens, d)
train_utts = collect(tok, corpus, "train", limit=n_train)
train_w = [tok.prepare(corpus.load(r, sample_rate=16_000)) for _, r in strided(corpus.utterances("train"), n_train)]  # same clips as collect()
test_w = [tok.prepare(corpus.load(r, sample_rate=16_000)) for _, r in corpus.utterances("test")]
ks = (4, 16) if QUICK else (128, 256, 512, 1024)
rows = []
for k in ks:
    alt = DualTokenizer(lin.with_codebook(fit_kmeans(feats, k, iters=8, seed=0)), tok.semantic, tok.config.text_vocab_size)
    tr = [replace(u_, linguistic=l_) for u_, (l_, _) in zip(train_utts, alt.encode_batch(train_w))]
    te = [replace(u_, linguistic=l_) for u_, (l_, _) in zip(test_utts, alt.encode_batch(test_w))]
    health = usage_stats(torch.cat([u_.linguistic for u_ in te]), k)
    acc = probe_table(tr, te, alt, steps=100 if QUICK else 300, streams=("linguistic",), targets=("phoneme",))["phoneme"]["linguistic"]
    rows.append((k, health["used_fraction"], health["perplexity"], acc))
    print(f"K={k:5d}: used {100 * health['used_fraction']:5.1f}%  perplexity {health['perplexity']:7.1f}  phoneme probe {acc:.3f}")

# %% [markdown]
# As predicted: every K at least 97.8 % used, and the probe rises by 3.8 points from K = 128 to 1,024 (0.846 / 0.867 / 0.872 / 0.884), the largest K scoring best. The shipped 256-code codebook has perplexity 214 on the test split, twice the 112 phoneme classes. How much of the last step is real: an earlier training of the same toy config (before this tokenizer was retrained from an empty cache) gave 0.853 / 0.867 / 0.875 / 0.872, flat beyond 512, so differences of about one point are within the run-to-run spread. K = 256 costs 0.5 to 1.7 points against the larger codebooks and halves or quarters the codes the backbone must learn to read and to predict from only ~130k linguistic tokens of training data. We keep 256 for the toy preset; `LinguisticConfig(codebook_size=512)` or 1,024 (the paper's size) is the alternative if the backbone turns out to be limited by phoneme information rather than by data.
#
# ## 8. Streaming in 240 ms chunks = offline
#
# Every layer is causal and the encoder has a finite receptive field, so a token is final as soon as its 60 ms lookahead has arrived. `tok.stream()` keeps just enough past audio, re-encodes a bounded window per chunk and releases the tokens that became final: after the first chunk, every 240 ms chunk releases 4 linguistic + 6 semantic tokens (two LLSSS groups) and `flush()` ends the stream exactly as offline encoding ends a clip.
#
# **What you should see:** on the 1.28 s clip of section 1 (six chunks, the last one partial), the first chunk releases one token fewer per stream, 3 L + 5 S (each stream's last token waits for its lookahead), then 4 + 6 per full chunk, the rest at the end; in all 21 + 32 tokens, identical to offline (`True True`).

# %%
# NBVAL_CHECK_OUTPUT
st = tok.stream()
parts = [st.push(x[i:i + CHUNK_SAMPLES]) for i in range(0, T, CHUNK_SAMPLES)] + [st.flush()]
print("tokens released per call (linguistic, semantic):", [(len(a), len(b)) for a, b in parts])
l_off, s_off = tok.encode(x)
print("identical to offline:", torch.equal(torch.cat([p[0] for p in parts]), l_off), torch.equal(torch.cat([p[1] for p in parts]), s_off))

# %% [markdown]
# **What you should see:** the same over 100 test clips: agreement 1.0000 (a float round-off tie in an argmin could in principle flip a token; none should here).

# %%
same = total = 0
for _, r in corpus.utterances("test")[:100]:
    w = tok.prepare(corpus.load(r, sample_rate=16_000))
    st = tok.stream()
    parts = [st.push(w[i:i + CHUNK_SAMPLES]) for i in range(0, w.numel(), CHUNK_SAMPLES)] + [st.flush()]
    l_off, s_off = tok.encode(w)
    same += int((torch.cat([p[0] for p in parts]) == l_off).sum() + (torch.cat([p[1] for p in parts]) == s_off).sum())
    total += len(l_off) + len(s_off)
print(f"streaming vs offline token agreement over 100 test clips: {same}/{total} = {same / total:.4f}")

# %% [markdown]
# ## Summary
#
# The linguistic stream is an ASR encoder cut off before its decoder: CTC training forces each 60 ms vector to hold the phonemes said in it (three 20 ms slots, so fast speech fits), and k-means turns the vectors into 16.67 Hz codes, so the backbone reads *what was said* as discrete tokens. Because every layer is causal and the lookahead is fixed (60 ms), the same codes come out whether the audio arrives whole or in 240 ms chunks. Measured on the toy preset (full run):
#
# | | |
# |---|---|
# | linguistic tokenizer | 16.67 Hz, causal ConvNeXt-1D encoder (d = 160, 6 blocks, 0.76M parameters), 60 ms lookahead, CTC over 112 classes (all four languages), k-means **K = 256** (paper: 1,024) |
# | training | CTC 350 steps + k-means: 107 s of CPU time (one thread; 840 s wall clock on a heavily shared machine) |
# | PER, test split | **seen voices 9.8 %** (English at 130-230 wpm 7.3 %, outside that range 8.8 %, Mandarin/Cantonese/Japanese 28.7 %); **unseen voice m4 6.1 %** (English at 130-230 wpm 4.9 %) |
# | codebook | 256/256 codes used on the test split, perplexity 214 |
# | K sweep | phoneme probe 0.846 / 0.867 / 0.872 / 0.884 for K = 128 / 256 / 512 / 1,024 (an earlier training: 0.853 / 0.867 / 0.875 / 0.872): a few points in all, about one of them run-to-run spread |
# | streaming | 240 ms chunks give exactly the offline tokens (100 test clips, 4,357/4,357 tokens) with 60 ms latency |
#
# What falls short: the non-English PER (731 training clips for three languages), quantization itself (read back through the CTC head, the K = 256 codes give 21.6 % PER where the encoder vectors give 8.9 %: Exercise 1), and the toy encoder is smaller than a first try during development (d = 192, 400 steps of 200 s batches, no time-stretch augmentation: about 8.6 % seen / 5.2 % unseen, not re-measured here), to stay inside the CPU budget.
#
# Next: [02 semantic tokenizer + 2:3 groups](02_semantic_tokenizer_and_interleaving.ipynb) builds the second stream, 25 Hz codes that keep what this one drops (pitch, timbre), and interleaves the two 2:3 into the ids the backbone reads.

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing the notebook names and predicts the effect. They reuse what the notebook computed (the tokenizer, the test clips, the encoder outputs of section 7) and train nothing but k-means, so each runs in well under a minute (seconds in quick mode, where the tiny tokenizer gives other numbers).

# %% [markdown]
# ### Exercise 1: what does quantization cost?
#
# The backbone never sees the encoder vectors, only their codes. `lin.read_codes(codes)` applies the CTC head to each code's centroid in place of the encoder vector. On 100 test clips (evenly spaced), compare the greedy-CTC PER from the encoder vectors with the PER from the codes, for the shipped K = 256 and for a K = 32 codebook fitted on the encoder outputs of section 7 (`lin.with_codebook(fit_kmeans(feats, 32, iters=8))`). Predict the order.
#
# **Expected:** from the encoder vectors PER 8.9 %; from the K = 256 codes 21.6 %; from K = 32 codes 49.5 % (100 test clips). Quantization more than doubles the errors of this one-token read-out, and 32 codes lose half the phonemes. The backbone does better than this read-out: it sees every code in context, as the ±2-token probe of section 7 does (0.867 phoneme accuracy at K = 256).

# %% tags=["solution"] jupyter={"source_hidden": true}
sample = strided(corpus.utterances("test"), 20 if QUICK else 100)
waves = [tok.prepare(corpus.load(r, sample_rate=16_000)) for _, r in sample]
refs = [inv.encode(phoneme_tokens(r.phonemes)) for _, r in sample]
k_small = 4 if QUICK else 32
small = lin.with_codebook(fit_kmeans(feats, k_small, iters=8, seed=0))
hyp_cont = [inv.encode(lin.transcribe(w)) for w in waves]
for name, model in ((f"codes, K = {lin.cfg.codebook_size}", lin), (f"codes, K = {k_small}", small)):
    hyp = [inv.encode(model.read_codes(model.encode(w))) for w in waves]
    print(f"{name:<16} PER {100 * phoneme_error_rate(hyp, refs):5.1f}%")
print(f"{'encoder vectors':<16} PER {100 * phoneme_error_rate(hyp_cont, refs):5.1f}%   ({len(waves)} test clips)")

# %% [markdown]
# ### Exercise 2: speaking rate against phoneme error
#
# The training speech spans 95 to 300 wpm: ordinary questions at 140-220 (`aqaa_ref.data.tasks.TRAIN_RATES`), "am I speaking fast or slow?" questions at 95-115 and 260-300, slow and fast answers at 115 and 270. The CTC head has 3 slots per 60 ms, 50 per second. Synthesise "which is bigger, seven or nine" (voice `m1`, seen) at 100, 175, 270, 350 and 450 wpm, encode it and print the phonemes per second and the PER of the greedy CTC output. Predict where the errors start, and whether the 50 slots per second are the limit.
#
# **Expected:** 5.5 / 10.1 / 15.9 / 22.9 / 26.4 phonemes per second; PER 22.2 % at 100 wpm, 5.6 % at 175 (one error in 18 phonemes), 33.3 % at 270, 50.0 % at 350 and 77.8 % at 450. The errors start at both edges of the training speech (100 and 270 wpm are near its slowest and fastest) and grow beyond it; even at 450 wpm the 26 phonemes per second are half the 50 slots, so the limit is what the encoder learned, not the number of CTC slots. (One sentence, 18 phonemes: each error is 5.6 points.)

# %% tags=["solution"] jupyter={"source_hidden": true}
for r in (100, 175, 270, 350, 450):
    w22, sr_, ph = synthesize("which is bigger, seven or nine", "en", "m1", rate=r)
    w = tok.prepare(torch.from_numpy(w22), sr_)
    ref = inv.encode(phoneme_tokens(ph))
    hyp = inv.encode(lin.transcribe(w))
    print(f"{r:3d} wpm: {len(ref) / (w.numel() / 16_000):4.1f} phonemes/s, PER {100 * phoneme_error_rate([hyp], [ref]):5.1f}%  "
          f"{' '.join(inv.decode(hyp))}")

# %% [markdown]
# ### Exercise 3: does the chunk size matter for streaming?
#
# Section 8 streamed in Step-Audio's 240 ms chunks, but the argument for "streaming = offline" never used the chunk size. Stream the first 100 test clips in chunks of 20 ms, 100 ms and 1 s and measure the agreement with offline encoding. Then, with 20 ms chunks on the clip of section 1, find when the first linguistic and the first semantic token come out. Predict both.
#
# **Expected:** agreement 4357/4357 = 1.0000 for all three chunk sizes; with 20 ms chunks the first linguistic token comes out after 120 ms (its 60 ms plus the 60 ms lookahead) and the first semantic token after 80 ms (40 + 40): the latency is the lookahead, whatever the chunk size.

# %% tags=["solution"] jupyter={"source_hidden": true}
clips100 = [tok.prepare(corpus.load(r, sample_rate=16_000)) for _, r in corpus.utterances("test")[:20 if QUICK else 100]]
for ms in (20, 100, 1000):
    n = 16 * ms
    same = total = 0
    for w in clips100:
        st = tok.stream()
        parts = [st.push(w[i:i + n]) for i in range(0, w.numel(), n)] + [st.flush()]
        l_off, s_off = tok.encode(w)
        same += int((torch.cat([p[0] for p in parts]) == l_off).sum() + (torch.cat([p[1] for p in parts]) == s_off).sum())
        total += len(l_off) + len(s_off)
    print(f"{ms:5d} ms chunks: agreement with offline {same}/{total} = {same / total:.4f}  ({len(clips100)} test clips)")
st, first = tok.stream(), [None, None]
for i in range(0, T, 320):                       # 20 ms = 320 samples
    for k, released in enumerate(st.push(x[i:i + 320])):
        if len(released) and first[k] is None:
            first[k] = (i + 320) / 16
print(f"20 ms chunks: first linguistic token out after {first[0]:.0f} ms of audio, first semantic token after {first[1]:.0f} ms")
