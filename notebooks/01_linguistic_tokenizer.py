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
# **What the paper does.** Step-Audio-AQAA hears speech through two token streams (facts §1). The first, the *linguistic* stream, runs at **16.67 Hz** (one token per 60 ms). It is the encoder output of a streaming **Paraformer** ASR model, quantized by the **nearest of 1,024 k-means centroids**: a stored table and a Euclidean argmin, not a learned VQ layer. Its job is phonemic content: what was said.
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
from dataclasses import replace

import torch
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from aqaa_ref.audio import resample, peak_normalize
from aqaa_ref.data import synthesize, phoneme_tokens, build_corpus, CorpusConfig
from aqaa_ref.data.styles import UNSEEN_VOICE
from aqaa_ref.tokenizer import (DualConfig, DualTokenizer, load_or_train_dual, training_log, causal_log_mel, assign,
                                fit_kmeans, usage_stats, load_clips, CHUNK_SAMPLES)
from aqaa_ref.tokenizer.kmeans import kmeans_plus_plus
from aqaa_ref.tokenizer.ctc import greedy_decode, forced_align
from aqaa_ref.data import strided
from aqaa_ref.tokenizer.linguistic import describe, encoder_outputs
from aqaa_ref.tokenizer.probes import collect, per_by_voice, codebook_usage, probe_table

QUICK = os.environ.get("AQAA_QUICK") == "1"   # CI sets this: tiny corpus, tiny tokenizer, same code
PRESET = "tiny" if QUICK else "toy"
print("quick mode" if QUICK else "full mode", "| preset:", PRESET)

# %% [markdown]
# ## 1. A causal log-mel
#
# `aqaa_ref.audio.log_mel` centres its 25 ms window on each frame, peeking 12.5 ms into the future. For streaming we want each frame to *end* where its 10 ms hop ends: frame *i* covers samples `[160 i − 240, 160 i + 160)`. A clip of *T* samples then has exactly `T // 160` frames, `T // 960` linguistic tokens and `T // 640` semantic tokens, and a prefix of the audio gives a prefix of the frames.

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
fig, ax = plt.subplots(figsize=(11, 3))
ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma", extent=[0, mel.shape[0] * 10, 0, 80])
for t in range(0, mel.shape[0] * 10 + 1, 60):
    ax.axvline(t, color="w", lw=0.4, alpha=0.6)
ax.set(xlabel="ms", ylabel="mel bin", title="causal log-mel; white lines = one linguistic token (60 ms) each")
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

# %%
log = training_log(corpus, cfg)
steps = [r["step"] for r in log["linguistic"]]
loss = [r["loss"] for r in log["linguistic"]]
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(steps, loss)
ax.set(yscale="log", xlabel="step", ylabel="CTC loss", title="linguistic encoder: CTC on phonemes")
plt.show()
print({k: f"{v:.0f} s" for k, v in log.items() if k.endswith("_seconds")}, "(wall clock, shared 2-core machine)")

# %% [markdown]
# ## 3. The CTC head reads 60 ms as three 20 ms slots
#
# English at 270 words per minute reaches 15-18 phonemes per second, and CTC needs at least one output step per phoneme (two for a doubled one). So the head maps each encoder vector `h_t` (one per 60 ms) to `3 × C` logits, reshaped into three 20 ms slots. The encoder vector — the thing k-means quantizes — must therefore hold *everything* said in its 60 ms.

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
fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(*blobs.T, s=4, c=assign(blobs, cents), cmap="tab10")
ax.scatter(*seeds.T, marker="x", c="k", s=60, label="k-means++ seeds")
ax.scatter(*cents.T, marker="*", c="r", s=150, label="after Lloyd")
ax.legend(loc="center")
plt.show()


# %% [markdown]
# ## 5. Token timelines: a seen voice and the unseen voice
#
# Two test questions: one by a training voice, one by `m4`, a voice never heard in training. Under each spectrogram: the reference phonemes placed by a forced alignment of the CTC head (each 20 ms slot labelled by the nearest aligned phoneme), and the linguistic code of each 60 ms token.

# %%
def pick(condition):
    item = next(it for it in corpus.split("test", condition=condition) if it.language == "en")
    return item.question, item.question_audio

def timeline(speech, rendering, ax):
    w = tok.prepare(corpus.load(rendering, sample_rate=16_000))
    l, _ = tok.encode(w)
    m = causal_log_mel(w)
    with torch.no_grad():
        lp = lin.ctc_log_probs(lin.hidden(causal_log_mel(torch.nn.functional.pad(w, (0, lin.lookahead_samples)))[None], len(l)))[0]
    ref = inv.encode(phoneme_tokens(rendering.phonemes))
    starts = forced_align(lp, ref)
    ax.imshow(m.T, origin="lower", aspect="auto", cmap="magma", extent=[0, m.shape[0] * 10, 0, 80])
    for p, s in zip(inv.decode(ref), starts or []):
        ax.text(s * 20 + 10, 84, p, ha="center", fontsize=8, clip_on=False)
    for i, c in enumerate(l.tolist()):
        ax.text(i * 60 + 30, -9, str(c), ha="center", fontsize=6.5, rotation=90, clip_on=False, color="C0")
        ax.axvline(i * 60, color="w", lw=0.3, alpha=0.5)
    ax.set_title(f"{speech.voice}, {speech.rate} wpm: \"{speech.text}\"   (top: aligned phonemes; bottom: linguistic codes)", fontsize=9, pad=14)
    ax.set_yticks([])
    return w

fig, axes = plt.subplots(2, 1, figsize=(12, 6.5))
waves = [timeline(*pick(c), ax) for c, ax in zip(["seen", "unseen_voice"], axes)]
axes[-1].set_xlabel("ms")
plt.tight_layout()
plt.show()
for w in waves:
    display(Audio(w.numpy(), rate=16_000))

# %% [markdown]
# ## 6. Phoneme error rate: seen voices vs the unseen voice
#
# Greedy CTC decoding on every distinct clip of the test split (questions by the seven training voices and by `m4`; answers by the assistant voice `f2`), corpus-level PER = edit distance / reference length. The test split also holds rates and pitches outside the training grids (`unseen_prosody`), which is where most errors are.

# %%
t0 = time.time()
test_utts = collect(tok, corpus, "test")
per = per_by_voice(test_utts)
for k, v in per.items():
    print(f"{k:<20} {v['clips']:4d} clips   PER {100 * v['per']:.1f}%")
print(f"({time.time() - t0:.0f} s)")

# %%
from aqaa_ref.tokenizer.ctc import phoneme_error_rate
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

# %% [markdown]
# ## 7. Codebook usage, and why the toy codebook has 256 codes, not 1,024
#
# The paper uses 1,024 centroids; the toy preset uses **256**. The measurement behind that choice: refit k-means with several K on the same encoder outputs (800 training clips, evenly spaced over the split), then look at codebook health on the test split (fraction used, perplexity) and at how well a linear probe recovers the aligned phoneme from the codes (window of ±2 tokens). With only ~130k linguistic tokens in the toy training set, a larger K spreads the backbone's training signal over more embeddings. The full run: phoneme-probe accuracy 0.853 / 0.867 / 0.875 / 0.872 for K = 128 / 256 / 512 / 1,024, every K almost fully used. Beyond 512 nothing is gained; 256 costs under one point against 512 and halves the codes the backbone must learn (perplexity ~200, above the 112 phoneme classes). We take 256 for the toy preset; `LinguisticConfig(codebook_size=512)` is the alternative if the backbone turns out to be limited by phoneme information rather than by data.

# %%
u = codebook_usage(test_utts, tok)["linguistic"]
counts = torch.bincount(torch.cat([t.linguistic for t in test_utts]), minlength=tok.vocab.n_linguistic)
fig, ax = plt.subplots(figsize=(8, 2.8))
ax.bar(range(len(counts)), counts.sort(descending=True).values, width=1.0)
ax.set(xlabel="code (sorted by frequency)", ylabel="count", title=f"linguistic codes on the test split: {u['used']}/{u['codes']} used, perplexity {u['perplexity']:.0f}")
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
# ## 8. Streaming in 240 ms chunks = offline
#
# Every layer is causal and the encoder has a finite receptive field, so a token is final as soon as its 60 ms lookahead has arrived. `tok.stream()` keeps just enough past audio, re-encodes a bounded window per chunk and releases the tokens that became final: after the first chunk, every 240 ms chunk releases 4 linguistic + 6 semantic tokens (two LLSSS groups) and `flush()` ends the stream exactly as offline encoding ends a clip. Below on the clip from section 1, and then over 100 test clips.

# %%
# NBVAL_CHECK_OUTPUT
st = tok.stream()
parts = [st.push(x[i:i + CHUNK_SAMPLES]) for i in range(0, T, CHUNK_SAMPLES)] + [st.flush()]
print("tokens released per call (linguistic, semantic):", [(len(a), len(b)) for a, b in parts])
l_off, s_off = tok.encode(x)
print("identical to offline:", torch.equal(torch.cat([p[0] for p in parts]), l_off), torch.equal(torch.cat([p[1] for p in parts]), s_off))

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
# ## Summary (full run, toy preset)
#
# | | |
# |---|---|
# | linguistic tokenizer | 16.67 Hz, causal ConvNeXt-1D encoder (d = 160, 6 blocks, 0.76M parameters), 60 ms lookahead, CTC over 112 classes (all four languages), k-means **K = 256** (paper: 1,024) |
# | training | CTC 350 steps + k-means: 167 s of CPU time (one thread; 336 s wall clock on the shared machine) |
# | PER, test split | **seen voices 10.1 %** (English at 130-230 wpm 7.6 %, outside that range 9.0 %, Mandarin/Cantonese/Japanese 29 %); **unseen voice m4 6.1 %** (English 4.8 %) |
# | codebook | 256/256 codes used on the test split, perplexity 208 |
# | K sweep | phoneme probe 0.853 / 0.867 / 0.875 / 0.872 for K = 128 / 256 / 512 / 1,024: nothing beyond 512, under one point from 256 to 512 |
# | streaming | 240 ms chunks give exactly the offline tokens (100 test clips, 4,357/4,357 tokens) with 60 ms latency |
#
# What falls short: the non-English PER (about 730 training clips for three languages), and the toy encoder is smaller than a first try (d = 192, 400 steps of 200 s batches, no time-stretch augmentation: about 8.6 % seen / 5.2 % unseen), to stay inside the CPU budget. The unseen voice scores *better* than the seen ones because the seen group also holds the assistant's styled answers (personas, very slow and fast speech, one-word answers); on the same kind of speech (English questions in the training rate range) the gap is 7.6 % vs 4.8 %, so the voice itself is not what costs accuracy.
#
# Next: notebook 02, the semantic stream and the 2:3 interleaving.
