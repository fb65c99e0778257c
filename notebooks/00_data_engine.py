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
# # 00 · The data engine: spoken questions and answers from nothing
#
# start of the course · **00** · [01 linguistic tokenizer →](01_linguistic_tokenizer.ipynb) · paper: *StepEval-Audio-360 and the training data* ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967))
#
# **You will build** the corpus every later notebook trains and tests on: about 5,000 spoken questions with checkable spoken answers, synthesised by eSpeak NG in four languages and ten voices, split so that the test set measures generalisation (a voice never heard, prosody outside the training grid, facts never trained).
#
# **Prerequisites** none: this is the start of the course. Python, a little PyTorch and NumPy; knowing what a spectrogram is helps (one is drawn below).
#
# **Run time** (2-core CPU, measured): warm under 10 s, cold about 20 s (cold: synthesising the toy corpus, about 5,600 clips, into the cache).

# %%
from aqaa_ref.viz import roadmap
_ = roadmap(0)

# %% [markdown]
# ## The course
#
# Eleven notebooks rebuild Step-Audio-AQAA ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967)), a model that hears a spoken question and speaks its answer, at toy scale: every model trains from scratch on this project's synthetic speech, on a 2-core CPU. In order:
#
# | notebook | you build | the paper's part |
# |---|---|---|
# | **00** data engine (here) | spoken questions and answers from a TTS, split into train / val / test conditions | StepEval-Audio-360 and the training data |
# | [01 linguistic tokenizer](01_linguistic_tokenizer.ipynb) | a causal CTC phoneme encoder whose outputs, quantized by k-means, are 16.67 Hz tokens; streaming in 240 ms chunks | dual-codebook tokenizer, linguistic stream |
# | [02 semantic tokenizer + 2:3 groups](02_semantic_tokenizer_and_interleaving.ipynb) | a 25 Hz VQ tokenizer that keeps pitch and timbre; both streams interleaved 2:3 into backbone ids | dual-codebook tokenizer, semantic stream |
# | [03 backbone + vocab](03_backbone_and_vocabulary.ipynb) | the Step-1 decoder (GQA, square-root ALiBi), a text BPE extended by the audio ids, the 10:15 text-audio output format | backbone LLM |
# | [04 pre-train + SFT](04_pretraining_and_sft.ipynb) | pre-training on continuation / ASR / TTS, then SFT-1 (AQTA + AQTAA) and SFT-2 (high-quality AQTAA) | training |
# | [05 masked DPO](05_masked_dpo.ipynb) | DPO whose reward counts only the text tokens | training |
# | [06 5:5:1 merge](06_model_merge.ipynb) | the released model as a weighted average of SFT-1, SFT-2 and DPO | training |
# | [07 flow vocoder](07_flow_matching_vocoder.ipynb) | a flow-matching vocoder: audio tokens → mel → waveform | neural vocoder |
# | [08 end to end](08_end_to_end.ipynb) | the whole chain: a spoken question in, a spoken answer out, streamed | the whole model |
# | [09 eval + ablations](09_evaluation_and_ablations.ipynb) | a toy StepEval with automatic judges, and the paper's ablations at toy scale | experiments |
# | [10 scale to 130B](10_scaling_to_130b.ipynb) | memory, FLOP and GPU planning for the 130B backbone; FSDP on CPU | backbone at 130B |
#
# **How to run them.** `./run.sh lab` sets up `.venv` from `requirements.lock` (the first time) and opens JupyterLab on `notebooks/`; run each notebook top to bottom, in order. Two modes:
#
# * **full mode** (the default): the toy settings. Every number in the text comes from a full run.
# * **quick mode**, `AQAA_QUICK=1 ./run.sh lab`: a tiny corpus and tiny models, the same code, each notebook in seconds to a minute. Numbers differ, shapes do not. CI runs this mode (`./run.sh test`), and the cells that start with `# NBVAL_CHECK_OUTPUT` must print exactly what is saved in the notebook, in both modes.
#
# What a notebook computes once is cached in `.cache/` (or `$AQAA_CACHE`), so a second run is fast ("warm"). Notebooks 04 to 10 study the toy models shipped in `checkpoints/toy/` (trained by this code, `./run.sh train`), so nothing long trains in them. Each notebook states its expectations before its outputs ("What you should see"), ends with a summary and exercises; the solutions are collapsed (click to open them).
#
# ## This notebook
#
# **What the paper trained on.** Step-Audio-AQAA's post-training data are *audio question → text answer* (AQTA) and *audio question → text answer interleaved with its audio* (AQTAA) pairs. The answer audio was **synthesised by a TTS model**; the pre-training behind it (Step-Omni) saw trillions of audio, text and image tokens. Its benchmark, StepEval-Audio-360, has 137 multi-turn Chinese prompts over nine dimensions (singing, creativity, role-playing, logical reasoning, voice understanding, voice instruction following, gaming, speech emotion control, language ability).
#
# **What we do instead.** Nothing can be downloaded here, and everything must train on a laptop CPU in minutes. So we make our own speech the way the Step-Audio team made their answers: with a TTS. We use **eSpeak NG**, a tiny formant synthesiser that ships inside the PyPI wheel `espeakng-loader`, driven through ctypes (`aqaa_ref.data.espeak`). It speaks 100+ languages (we use English, Mandarin, Cantonese, Japanese), has ten voice variants (timbre), and takes rate and pitch settings, so questions and answers can differ in *who* speaks and *how*. Then `aqaa_ref.data.tasks` writes questions whose correct answer, and how it must be spoken, follows from the question alone, one family per StepEval dimension where that is honest, and `aqaa_ref.data.corpus` renders, splits and caches them.
#
# In order: one utterance → what rate and pitch do to it → four languages, ten voices → the task families → the corpus and its held-out splits → a panel to try things yourself.

# %%
import os, json
from collections import Counter

import numpy as np
import torch
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from aqaa_ref.audio import log_mel, estimate_f0, median_f0, resample
import aqaa_ref
from aqaa_ref.cache import cache_dir
from aqaa_ref.data import (synthesize, phoneme_tokens, assistant, build_corpus, CorpusConfig,
                           plan_items, FAMILIES, EMOTIONS, PERSONAS, RATES, PITCHES, VOICES, LANGUAGES)

QUICK = os.environ.get("AQAA_QUICK") == "1"   # CI sets this: small corpus, same code
REPO = os.path.dirname(os.path.dirname(os.path.abspath(aqaa_ref.__file__)))   # paths are printed relative to it
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## 1. One utterance
#
# `synthesize(text, language, voice, rate, pitch, pitch_range)` returns the waveform (float32, 22,050 Hz) and the IPA phonemes eSpeak spoke. eSpeak keeps hidden state between utterances (its pitch "flutter" index), so the binding reloads the library for every call: identical inputs give identical samples, which the tests check.
#
# **What you should see:** about 1.3 s of audio for five short words at 175 words per minute (≈ 28,000 samples at 22,050 Hz), 14 phonemes once eSpeak's stress marks (`ˈ`, `ˌ`) are stripped for the CTC targets, and `True` for the second call.

# %%
# NBVAL_CHECK_OUTPUT
wav, sr, phonemes = synthesize("what is three plus four", language="en", voice="m1", rate=175, pitch=50)
print("sample rate:", sr, "| samples:", wav.shape[0], f"| {wav.shape[0] / sr:.2f} s")
print("phonemes:", phonemes)
print("CTC targets:", phoneme_tokens(phonemes), f"({len(phoneme_tokens(phonemes))})")
again, _, _ = synthesize("what is three plus four", language="en", voice="m1", rate=175, pitch=50)
print("identical on a second call:", np.array_equal(wav, again))

# %%
display(Audio(wav, rate=sr))

# %% [markdown]
# ## 2. How fast, how high
#
# Rate is in words per minute; pitch is eSpeak's 0..100 scale. The instructions our tasks use map to fixed settings (`aqaa_ref.data.styles.RATES`, `PITCHES`): that is the one place to change what "slow" or "high" means. Below: the same sentence slow and fast, low and high — waveform, log-mel (what the tokenizers see) and the F0 track (`aqaa_ref.audio.estimate_f0`).
#
# **What you should see:** if duration is inversely proportional to rate, the slow clip (115 wpm) lasts 270 / 115 = 2.35 times the fast one (270 wpm), within 10 % (pauses and word edges need not scale); low and high have the same length (pitch does not change timing), within 1 %.

# %%
# NBVAL_CHECK_OUTPUT
print("RATES   (words/min):", RATES)
print("PITCHES (0..100):   ", PITCHES)
styles = ["slow", "fast", "low", "high"]
clips = {s: assistant("which is bigger, seven or nine", "en", s).synthesize()[0] for s in styles}
for s, w in clips.items():
    print(f"{s:>5}: {w.shape[0]} samples = {w.shape[0] / 22050:.2f} s")
print(f"slow / fast duration: {clips['slow'].shape[0] / clips['fast'].shape[0]:.2f} (1/rate predicts {270 / 115:.2f})")

# %% [markdown]
# The slow clip is 2.45 times the fast one, 5 % above the 1/rate prediction: eSpeak stretches the slow speech a little more than the rate alone says. Low and high differ by 120 samples (0.3 %).
#
# **What you should see:** median F0 about the same for slow and fast (both at pitch 50, within 5 Hz), and much higher for high (pitch 85) than for low (pitch 15): more than 1.5 times.

# %%
# measured: duration follows rate, median F0 follows pitch
for s, w in clips.items():
    w16 = resample(torch.from_numpy(w), 22050, 16000)
    print(f"{s:>5}: median F0 {median_f0(w16, 16000):.0f} Hz")

# %% [markdown]
# Slow and fast: 184 and 186 Hz; low and high: 135 and 264 Hz, a factor 1.96, almost an octave. The F0 panels below show the same: the high contour sits about an octave above the low one, and the slow one is the fast one stretched in time.

# %%
fig, axes = plt.subplots(4, 3, figsize=(14, 9), gridspec_kw={"width_ratios": [1, 1.3, 1]}, layout="constrained")
for row, s in enumerate(styles):
    w16 = resample(torch.from_numpy(clips[s]), 22050, 16000)
    t = np.arange(w16.numel()) / 16000
    axes[row, 0].plot(t, w16.numpy(), lw=0.4)
    axes[row, 0].set(ylabel=f"{s}\namplitude", xlim=(0, 3.2))
    im = axes[row, 1].imshow(log_mel(w16).numpy(), origin="lower", aspect="auto", extent=[0, t[-1], 0, 80], cmap="magma")
    axes[row, 1].set(ylabel="mel bin")
    fig.colorbar(im, ax=axes[row, 1], label="log energy")
    f0 = estimate_f0(w16, 16000).numpy(); ft = np.arange(f0.size) * 0.01
    axes[row, 2].plot(ft[f0 > 0], f0[f0 > 0], ".", ms=2)
    axes[row, 2].set(ylabel="F0 (Hz)", ylim=(50, 300), xlim=(0, 3.2))
axes[0, 0].set_title("waveform"); axes[0, 1].set_title("log-mel (80 bins, 10 ms hop)"); axes[0, 2].set_title("F0 track (voiced frames)")
for ax in axes[-1]:
    ax.set_xlabel("time (s)")
plt.show()

# %%
for s in styles:
    print(s); display(Audio(clips[s], rate=22050))

# %% [markdown]
# ## 3. Four languages, ten voices
#
# The paper claims Chinese, English, Japanese and Cantonese. eSpeak reads Hanzi for Mandarin and Cantonese (tones become numbers in the phonemes, e.g. `a5`, and we keep them: they are phonemic) and kana for Japanese.

# %%
# NBVAL_CHECK_OUTPUT
examples = {"en": "what is two plus three", "cmn": "二加三等于几", "yue": "二加三係幾多", "ja": "にたすさんは"}
lang_clips = {}
for lang, text in examples.items():
    w, sr, ph = synthesize(text, lang, "f1")
    lang_clips[lang] = w
    print(f"{lang:>3} {text:<24} {w.shape[0] / sr:.2f} s  {ph}")

# %%
for lang, w in lang_clips.items():
    print(lang); display(Audio(w, rate=22050))

# %% [markdown]
# The ten voice variants differ in timbre and in base pitch. **What you should see:** the five male variants (m1-m5) between 85 and 100 Hz, the five female ones (f1-f5) about twice as high, 170-200 Hz, at the same pitch setting (50).

# %%
f0s = []
for v in VOICES:
    w, sr, _ = synthesize("what comes after five", "en", v)
    f0s.append(median_f0(resample(torch.from_numpy(w), sr, 16000), 16000))
fig, ax = plt.subplots(figsize=(8, 2.8))
bars = ax.bar(VOICES, f0s, color=["tab:blue" if v.startswith("m") else "tab:red" for v in VOICES])
ax.bar_label(bars, fmt="%.0f", fontsize=8)
ax.set(xlabel="eSpeak voice variant", ylabel="median F0 (Hz)", ylim=(0, 230),
       title="the ten voice variants at pitch 50 (m = male, f = female; n = 1 clip each)")
plt.show()
print("male", [round(f) for f in f0s[:5]], "| female", [round(f) for f in f0s[5:]])

# %% [markdown]
# ## 4. Task families
#
# Each family mirrors a StepEval-Audio-360 dimension *where a synthetic version is honest*: the correct answer and how it must be spoken follow from the question. **Not covered**: singing (eSpeak cannot sing; a pitch-contour imitation would be a fake) and creativity (no single correct answer to score automatically).
#
# Emotions are **proxies**: eSpeak has no emotional voices, so "happy" means faster, higher and with a wider pitch range, "sad" slower, lower and flatter. Role-play personas map to a voice and prosody. Instructions are spoken as part of the question, or (a quarter of the time) given as *text* beside the audio. That mixed input, a spoken question with a text instruction, is our choice of how to exercise the paper's instruction following; the share is a config field (`CorpusConfig.text_instruction_prob = 0.25`), not a published number.

# %%
# NBVAL_CHECK_OUTPUT
print("emotion proxies:")
for k, v in EMOTIONS.items():
    print(f"  {k:<8} {v}")
print("personas:")
for k, v in PERSONAS.items():
    print(f"  {k:<8} {v}")

# %% [markdown]
# Two training questions of each family, with their answers (text and speaking style) and the `fact` they test. Planning needs no audio, so this cell plans the full toy corpus in both modes.

# %%
# NBVAL_CHECK_OUTPUT
items = plan_items(CorpusConfig.from_preset("toy"))   # the toy corpus's items: no audio needed to plan
for fam in FAMILIES:
    ex = [it for it in items if it.family == fam and it.split == "train"][:2]
    for it in ex:
        instr = f" [text instruction: {it.instruction}]" if it.instruction else ""
        ans = " + ".join(f"{a.text!r} ({a.style})" for a in it.answer)
        print(f"{fam:<28} {it.question.text!r}{instr} -> {ans}   fact={it.fact}")

# %% [markdown]
# Every answer above is one or two words, about 3 text tokens. That is enough to learn to answer, but
# too short to study *how* text and audio are laid out in an answer (notebook 03: 10 text : 15 audio
# tokens per round, against 3:5, 6:50, text first or audio only): a 3-token text fits in the first
# chunk of every format. So there is one more family, `long_answer`, outside the seven StepEval
# dimensions and drawn only where asked for (`data.long_answer_items`, or a corpus with
# `family_counts={..., "long_answer": N}`): counting a range, spelling two words, reading a list
# back, and a sentence repeated in a requested style. Each answer still follows from the question
# alone, so it is checked exactly like the short ones.
#
# **What you should see:** answers of 9-13 words, one per task, and a spoken sentence of about two
# seconds (over the 1,048 long items the ablation draws, answers last 2.9 s on average and up to
# 5.6 s; the one-word answers last about half a second).

# %%
# NBVAL_CHECK_OUTPUT
import random
from aqaa_ref.data import EXTRA_FAMILIES
from aqaa_ref.data.tasks import TaskContext, make_item

rng = random.Random(0)
long_items = {}
while len(long_items) < 4:                                # one of each long-answer task
    it = make_item("long_answer", rng, TaskContext())
    long_items.setdefault(it.task, it)
print("extra families:", list(EXTRA_FAMILIES))
for task, it in long_items.items():
    print(f"{task:<9} {it.question.text!r}\n          -> {it.answer_text!r} ({it.style}, {len(it.answer_text.split())} words)")
wav, sr, _ = long_items["sentence"].answer[0].synthesize()
print(f"the sentence answer, spoken {long_items['sentence'].style}: {len(wav) / sr:.2f} s")

# %%
display(Audio(wav, rate=sr))

# %% [markdown]
# ## 5. The corpus: rendered, split, cached
#
# `build_corpus(CorpusConfig.from_preset("toy"))` plans every item, renders each *distinct* utterance once in worker processes (eSpeak is global state: processes, not threads), writes 16 kHz WAVs named by a hash of their settings, and writes the manifest last, atomically. A second call just reads the manifest.
#
# The splits measure generalisation. `test` items carry a condition: **seen** (new renderings of facts that are not held out), **unseen_voice** (voice `m4`, never heard in training), **unseen_prosody** (rates and pitches outside the training grids), **unseen_fact** (operand pairs and word pairs held out of training in every language).
#
# **What you should see** (full mode): `train` = the sum of the toy family counts, 1,500 + 800 + 700 + 350 + 350 + 400 + 400 = 4,500 items; `val` = 20 per family × 7 = 140; `test` = 12 per family and condition: 84 for each of the three conditions every family has, and 72 for `unseen_fact` (voice understanding has no facts to hold out, so 6 families), 324 in all. Quick mode builds the tiny corpus (2 % of the training items).

# %%
cfg = CorpusConfig.from_preset("tiny" if QUICK else "toy")
corpus = build_corpus(cfg)
stats = corpus.stats()
print(corpus)                                             # the root relative to the cache folder
print("cache folder:", os.path.relpath(cache_dir().resolve(), REPO), "(relative to the repository; AQAA_CACHE moves it)")
print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in stats.items() if k != "train_by_family"},
                 indent=1, ensure_ascii=False))

# %% [markdown]
# The split sizes are as predicted: 4,500 / 140 / 324, with 84 / 84 / 84 / 72 test items per condition. English dominates (4,096 of 4,964 items) because only the language-ability family speaks the other three languages; 2.46 hours of audio in 5,623 distinct clips.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.4), layout="constrained")
fam = stats["train_by_family"]
axes[0].barh(list(fam), list(fam.values())); axes[0].invert_yaxis()
axes[0].set(xlabel="training items", title=f"training items per family (n = {sum(fam.values())})")
secs = [it.question_audio.seconds for it in corpus.items]
axes[1].hist(secs, bins=40)
axes[1].set(xlabel="question length (s)", ylabel="questions", title=f"question length (n = {len(secs)} items, all splits)")
lang = stats["by_language"]
axes[2].bar(list(lang), list(lang.values()))
axes[2].set(xlabel="answer language", ylabel="items", title=f"items per answer language (n = {sum(lang.values())})")
plt.show()

# %%
# a few test items: the same family under each condition, with their audio
for cond in ["seen", "unseen_voice", "unseen_prosody", "unseen_fact"]:
    it = corpus.split("test", condition=cond, family="logical_reasoning")[0]
    print(f"{cond:<15} voice={it.question.voice} rate={it.question.rate} pitch={it.question.pitch}  {it.question.text!r} -> {it.answer_text!r}")
    display(Audio(corpus.load(it.question_audio).numpy(), rate=16000))

# %% [markdown]
# ### A style switch mid-answer
#
# Multi-segment answers keep one rendering per segment; the paper's *marker-preserving concatenation* (notebook 03 onwards) wraps each segment in its own `<audio_start>`/`<audio_end>`.

# %%
it = next(i for i in corpus.items if i.is_multi_segment)
print(repr(it.question.text), "->", [(s.text, s.style, s.rate, s.pitch) for s in it.answer])
display(Audio(corpus.load(it.question_audio).numpy(), rate=16000))
display(Audio(corpus.answer_wav(it).numpy(), rate=16000))

# %% [markdown]
# ### Views for the later stages
#
# Pre-training mixes audio continuation, ASR and TTS; SFT uses AQTA and AQTAA pairs. Each view is a list of plain records pointing at cached audio (paths relative to the corpus folder).

# %%
for view in ["asr_pairs", "tts_pairs", "aqta", "aqtaa"]:
    rows = getattr(corpus, view)("train")
    r = {k: (v if not hasattr(v, "path") else v.path) for k, v in rows[0].items()}
    print(f"{view:<10} {len(rows):>5} records, e.g. {r}")

# %% [markdown]
# ## 6. Try it yourself
#
# Type a sentence, pick a language and a voice, move the sliders, press *speak*.

# %%
import ipywidgets as W
text = W.Text(value="what is six times seven", description="text")
lang = W.Dropdown(options=list(LANGUAGES), value="en", description="language")
voice = W.Dropdown(options=list(VOICES), value="f2", description="voice")
rate = W.IntSlider(value=175, min=80, max=400, step=5, description="rate (wpm)")
pitch = W.IntSlider(value=50, min=0, max=100, description="pitch")
prange = W.IntSlider(value=50, min=0, max=100, description="range")
button, out = W.Button(description="speak"), W.Output()

def on_speak(_=None):
    out.clear_output(wait=True)
    with out:
        w, sr, ph = synthesize(text.value, lang.value, voice.value, rate.value, pitch.value, prange.value)
        w16 = resample(torch.from_numpy(w), sr, 16000)
        print(f"{w.shape[0] / sr:.2f} s, median F0 {median_f0(w16, 16000):.0f} Hz, phonemes: {ph}")
        display(Audio(w, rate=sr))
        fig, ax = plt.subplots(figsize=(9, 2.2), layout="constrained")
        m = log_mel(w16).numpy()
        im = ax.imshow(m, origin="lower", aspect="auto", cmap="magma", extent=[0, m.shape[1] / 100, 0, 80])
        fig.colorbar(im, ax=ax, label="log energy")
        ax.set(title="log-mel", xlabel="time (s)", ylabel="mel bin"); plt.show()

button.on_click(on_speak)
display(W.VBox([W.HBox([text, lang, voice]), W.HBox([rate, pitch, prange]), button, out]))
on_speak()

# %% [markdown]
# ## Summary
#
# The data engine turns a TTS into a supervised dataset: `aqaa_ref.data.tasks` writes questions whose answer, and the way it must be spoken, follow from the question alone (arithmetic, comparisons, translations, "answer slowly", "answer like a robot", "am I a man or a woman"); eSpeak NG speaks them in four languages and ten voices at chosen rates and pitches; `build_corpus` renders each distinct utterance once, caches it and splits the items so that the test set asks four different questions: does the model handle new renderings (`seen`), a new voice (`unseen_voice`), prosody outside the training grid (`unseen_prosody`), and facts it never trained on (`unseen_fact`)? Rate and pitch settings really move duration and F0 (2.45× longer at 115 than at 270 wpm; 135 vs 264 Hz for low vs high), which is what the later notebooks' judges measure. The toy corpus: 4,964 items, 5,623 clips, 2.5 hours of speech.
#
# Next: [01 linguistic tokenizer](01_linguistic_tokenizer.ipynb) turns this speech into the first of the two token streams the backbone reads: 16.67 Hz codes from a CTC phoneme encoder and k-means.

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing and predicts its effect; the solution cell under it is collapsed (click to open). All run in seconds: they synthesise a few clips or only *plan* a corpus (no audio).

# %% [markdown]
# ### Exercise 1: rate against duration
#
# Synthesise "which is bigger, seven or nine" (voice `m1`) at 100, 150, 200, 300 and 400 words per minute. If duration were exactly inversely proportional to rate, `seconds × rate / 60` (the "words" eSpeak spoke) would be the same at every rate. Print it.
#
# **Expected:** durations 3.25, 2.11, 1.57, 0.98, 0.72 s; `seconds × rate / 60` falls slowly from 5.42 to 4.82 (±6 % around 5.1): close to 1/rate, with fast speech a little shorter than the law says.

# %% tags=["solution"] jupyter={"source_hidden": true}
for r in (100, 150, 200, 300, 400):
    w, sr, _ = synthesize("which is bigger, seven or nine", "en", "m1", rate=r)
    print(f"{r:3d} wpm: {w.shape[0] / sr:.2f} s, seconds x rate / 60 = {w.shape[0] / sr * r / 60:.2f}")

# %% [markdown]
# ### Exercise 2: is eSpeak's pitch scale linear in Hz?
#
# For voices `m1` and `f1`, measure the median F0 of "what comes after five" at pitch 0, 25, 50, 75 and 100, and the ratio between neighbouring settings. Linear in Hz would give equal *differences*; linear in semitones (log-frequency) equal *ratios*.
#
# **Expected:** m1 58 → 72 → 89 → 117 → 152 Hz, f1 107 → 132 → 170 → 222 → 291 Hz: the differences grow (14 to 35 Hz for m1) while the ratios stay between 1.23 and 1.32 per 25 steps, so the scale is close to logarithmic; 0 → 100 spans a factor of 2.6 (m1) and 2.7 (f1), about 1.4 octaves. (Quick mode measures m1 only.)

# %% tags=["solution"] jupyter={"source_hidden": true}
for v in ("m1",) if QUICK else ("m1", "f1"):
    hz = []
    for p in (0, 25, 50, 75, 100):
        w, sr, _ = synthesize("what comes after five", "en", v, pitch=p)
        hz.append(median_f0(resample(torch.from_numpy(w), sr, 16000), 16000))
    print(v, "Hz:", [round(h) for h in hz], "| ratios:", [round(b / a, 2) for a, b in zip(hz, hz[1:])],
          f"| 0 -> 100: x{hz[-1] / hz[0]:.2f}")

# %% [markdown]
# ### Exercise 3: are the held-out facts really held out?
#
# Plan the toy corpus (no audio) and collect the `fact` of every training item and of every `unseen_fact` test item. Then double `heldout_fraction` (0.15 → 0.30) and plan again. Predict: no training item ever uses a held-out fact; doubling the fraction roughly doubles the held-out pool (`aqaa_ref.data.tasks.heldout_facts`) while the split sizes stay 4,500 / 140 / 324. Also count the `seen` test facts that never occur in training.
#
# **Expected:** 0 training items with a held-out fact in both plans; the held-out pool grows from 135 to 269 facts, of which the 72 `unseen_fact` items use 47 and then 57 distinct ones; 4,500 / 140 / 324 both times. And a surprise: 5 `seen` test facts (2 at 0.30) never occur in training, all "repeat after me" word pairs: there are 552 ordered word pairs and fewer than 400 of them in training (the 400 gaming items also hold "say the opposite"), so for this family `seen` means "not held out" rather than "trained"; for a copying task that costs nothing.

# %% tags=["solution"] jupyter={"source_hidden": true}
from aqaa_ref.data.tasks import heldout_facts
import random
for frac in (0.15, 0.30):
    c = CorpusConfig.from_preset("toy", heldout_fraction=frac)
    plan = plan_items(c)
    pool = heldout_facts(random.Random(c.seed + 1), c.heldout_fraction, c.max_operand)
    train_facts = {it.fact for it in plan if it.split == "train"}
    unseen = {it.fact for it in plan if it.condition == "unseen_fact"}
    seen_untrained = sorted({it.fact for it in plan if it.split == "test" and it.condition == "seen"} - train_facts)
    print(f"heldout_fraction {frac}: splits {dict(Counter(it.split for it in plan))}, held-out pool {len(pool)}, "
          f"used by unseen_fact items {len(unseen)}, training items with a held-out fact "
          f"{sum(it.fact in pool for it in plan if it.split == 'train')}")
    print("   seen test facts never trained:", seen_untrained)

# %% [markdown]
# ### Exercise 4: text instructions
#
# Plan the toy corpus with `text_instruction_prob` 0.25 (the default) and 0.5 and count the training items whose instruction comes as text beside the audio, per family. Predict the families (only those whose questions carry an instruction) and how the count scales.
#
# **Expected:** three families only (voice instruction following, speech emotion control, role-playing); 300 training items at 0.25 and 603 at 0.5: the count doubles, within 1 %.

# %% tags=["solution"] jupyter={"source_hidden": true}
for prob in (0.25, 0.5):
    train = [it for it in plan_items(CorpusConfig.from_preset("toy", text_instruction_prob=prob)) if it.split == "train"]
    with_text = Counter(it.family for it in train if it.instruction)
    print(f"text_instruction_prob {prob}: {sum(with_text.values())} training items with a text instruction {dict(with_text)}")
