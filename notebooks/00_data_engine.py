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
# **What the paper trained on.** Step-Audio-AQAA's post-training data are *audio question → text answer* (AQTA) and *audio question → text answer interleaved with its audio* (AQTAA) pairs. The answer audio was **synthesised by Step-Audio's own TTS model**; the pre-training behind it (Step-Omni) saw trillions of audio, text and image tokens. Its benchmark, StepEval-Audio-360, has 137 multi-turn Chinese prompts over nine dimensions (singing, creativity, role-playing, logical reasoning, voice understanding, voice instruction following, gaming, speech emotion control, language ability).
#
# **What we do instead.** Nothing can be downloaded here, and everything must train on a laptop CPU in minutes. So we make our own speech the same way the Step-Audio team made their answers: with a TTS. We use **eSpeak NG**, a tiny formant synthesiser that ships inside the PyPI wheel `espeakng-loader`, driven through ctypes (`aqaa_ref.data.espeak`). It speaks 100+ languages (we use English, Mandarin, Cantonese, Japanese), has ten voice variants (timbre), and takes rate and pitch settings, so questions and answers can differ in *who* speaks and *how*.
#
# Then `aqaa_ref.data.tasks` writes questions whose correct answer, and how it must be spoken, follows from the question alone, one family per StepEval dimension where that is honest, and `aqaa_ref.data.corpus` renders, splits and caches them.
#
# This notebook: one utterance → what rate and pitch do to it → four languages → the task families → the corpus and its held-out splits → a panel to try things yourself.

# %%
import os, json
import numpy as np
import torch
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from aqaa_ref.audio import log_mel, estimate_f0, median_f0, resample
from aqaa_ref.data import (synthesize, phoneme_tokens, assistant, build_corpus, CorpusConfig,
                           plan_items, FAMILIES, EMOTIONS, PERSONAS, RATES, PITCHES, VOICES, LANGUAGES)

QUICK = os.environ.get("AQAA_QUICK") == "1"   # CI sets this: small corpus, same code
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## 1. One utterance
#
# `synthesize(text, language, voice, rate, pitch, pitch_range)` returns the waveform (float32, 22,050 Hz) and the IPA phonemes eSpeak spoke. eSpeak keeps hidden state between utterances (its pitch "flutter" index), so the binding reloads the library for every call: identical inputs give identical samples, which the tests check.

# %%
# NBVAL_CHECK_OUTPUT
wav, sr, phonemes = synthesize("what is three plus four", language="en", voice="m1", rate=175, pitch=50)
print("sample rate:", sr, "| samples:", wav.shape[0], f"| {wav.shape[0] / sr:.2f} s")
print("phonemes:", phonemes)
print("CTC targets:", phoneme_tokens(phonemes))
again, _, _ = synthesize("what is three plus four", language="en", voice="m1", rate=175, pitch=50)
print("identical on a second call:", np.array_equal(wav, again))

# %%
display(Audio(wav, rate=sr))

# %% [markdown]
# ## 2. How fast, how high
#
# Rate is in words per minute; pitch is eSpeak's 0..100 scale. The instructions our tasks use map to fixed settings (`aqaa_ref.data.styles.RATES`, `PITCHES`): that is the one place to change what "slow" or "high" means. Below: the same sentence slow and fast, low and high — waveform, log-mel (what the tokenizers see) and the F0 track (`aqaa_ref.audio.estimate_f0`).

# %%
# NBVAL_CHECK_OUTPUT
print("RATES   (words/min):", RATES)
print("PITCHES (0..100):   ", PITCHES)
styles = ["slow", "fast", "low", "high"]
clips = {s: assistant("which is bigger, seven or nine", "en", s).synthesize()[0] for s in styles}
for s, w in clips.items():
    print(f"{s:>5}: {w.shape[0]} samples = {w.shape[0] / 22050:.2f} s")

# %%
# measured: duration follows rate, median F0 follows pitch
for s, w in clips.items():
    w16 = resample(torch.from_numpy(w), 22050, 16000)
    print(f"{s:>5}: median F0 {median_f0(w16, 16000):.0f} Hz")

# %%
fig, axes = plt.subplots(4, 3, figsize=(14, 9), gridspec_kw={"width_ratios": [1, 1.3, 1]})
for row, s in enumerate(styles):
    w16 = resample(torch.from_numpy(clips[s]), 22050, 16000)
    t = np.arange(w16.numel()) / 16000
    axes[row, 0].plot(t, w16.numpy(), lw=0.4); axes[row, 0].set_ylabel(s); axes[row, 0].set_xlim(0, 3.2)
    axes[row, 1].imshow(log_mel(w16).numpy(), origin="lower", aspect="auto", extent=[0, t[-1], 0, 80], cmap="magma")
    f0 = estimate_f0(w16, 16000).numpy(); ft = np.arange(f0.size) * 0.01
    axes[row, 2].plot(ft[f0 > 0], f0[f0 > 0], ".", ms=2); axes[row, 2].set_ylim(50, 300); axes[row, 2].set_xlim(0, 3.2)
axes[0, 0].set_title("waveform"); axes[0, 1].set_title("log-mel (80 bins, 10 ms hop)"); axes[0, 2].set_title("F0 (Hz)")
axes[-1, 0].set_xlabel("s"); axes[-1, 1].set_xlabel("s"); axes[-1, 2].set_xlabel("s")
plt.tight_layout(); plt.show()

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

# %%
f0s = []
for v in VOICES:
    w, sr, _ = synthesize("what comes after five", "en", v)
    f0s.append(median_f0(resample(torch.from_numpy(w), sr, 16000), 16000))
plt.figure(figsize=(8, 2.6)); plt.bar(VOICES, f0s, color=["tab:blue"] * 5 + ["tab:red"] * 5)
plt.ylabel("median F0 (Hz)"); plt.title("the ten eSpeak voice variants (m = male, f = female)"); plt.show()

# %% [markdown]
# ## 4. Task families
#
# Each family mirrors a StepEval-Audio-360 dimension *where a synthetic version is honest*: the correct answer and how it must be spoken follow from the question. **Not covered**: singing (eSpeak cannot sing; a pitch-contour imitation would be a fake) and creativity (no single correct answer to score automatically).
#
# Emotions are **proxies**: eSpeak has no emotional voices, so "happy" means faster, higher and with a wider pitch range, "sad" slower, lower and flatter. Role-play personas map to a voice and prosody. Instructions are spoken as part of the question, or (a quarter of the time) given as *text* beside the audio — the seed's "text instruction together with a spoken question" mode.

# %%
# NBVAL_CHECK_OUTPUT
print("emotion proxies:")
for k, v in EMOTIONS.items():
    print(f"  {k:<8} {v}")
print("personas:")
for k, v in PERSONAS.items():
    print(f"  {k:<8} {v}")

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
# ## 5. The corpus: rendered, split, cached
#
# `build_corpus(CorpusConfig.from_preset("toy"))` plans every item, renders each *distinct* utterance once in worker processes (eSpeak is global state: processes, not threads), writes 16 kHz WAVs named by a hash of their settings, and writes the manifest last, atomically. A second call just reads the manifest.
#
# The splits measure generalisation. `test` items carry a condition: **seen** (new renderings of trained facts), **unseen_voice** (voice `m4`, never heard in training), **unseen_prosody** (rates and pitches outside the training grids), **unseen_fact** (operand pairs and word pairs held out of training in every language).

# %%
cfg = CorpusConfig.from_preset("tiny" if QUICK else "toy")
corpus = build_corpus(cfg)
stats = corpus.stats()
print(corpus)
print(json.dumps({k: v for k, v in stats.items() if k != "train_by_family"}, indent=1, ensure_ascii=False))

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
fam = stats["train_by_family"]
axes[0].barh(list(fam), list(fam.values())); axes[0].invert_yaxis(); axes[0].set_title("training items per family")
secs = [it.question_audio.seconds for it in corpus.items]
axes[1].hist(secs, bins=40); axes[1].set_title("question length (s)")
lang = stats["by_language"]
axes[2].bar(list(lang), list(lang.values())); axes[2].set_title("items per answer language")
plt.tight_layout(); plt.show()

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
# Pre-training mixes audio continuation, ASR and TTS; SFT uses AQTA and AQTAA pairs. Each view is a list of plain records pointing at cached audio.

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
        fig, ax = plt.subplots(figsize=(9, 2)); ax.imshow(log_mel(w16).numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title("log-mel"); plt.show()

button.on_click(on_speak)
display(W.VBox([W.HBox([text, lang, voice]), W.HBox([rate, pitch, prange]), button, out]))
on_speak()
