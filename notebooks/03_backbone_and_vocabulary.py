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
# # 03 · The Step-1 backbone and its extended vocabulary
#
# [← 02 semantic tok. + 2:3 groups](02_semantic_tokenizer_and_interleaving.ipynb) · **03** · [04 pre-train + SFT →](04_pretraining_and_sft.ipynb) · paper: *Backbone LLM (Step-Omni, 5,120 added audio ids)* ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967))
#
# **You will build** one Step-1 decoder block by hand (RMSNorm, grouped-query attention with a
# square-root ALiBi bias, SwiGLU) and check it against the library's model, then give a text model
# rows for the audio ids and lay out every answer format of the paper on that one id space.
#
# **Prerequisites** [01 linguistic tokenizer](01_linguistic_tokenizer.ipynb) and
# [02 semantic tokenizer and interleaving](02_semantic_tokenizer_and_interleaving.ipynb) (where the
# 1,024 + 4,096 audio ids and the LLSSS groups come from); a decoder-only transformer (causal
# attention, softmax, next-token logits).
#
# **Run time** (2-core CPU, measured): warm under 10 s, cold under 10 s (cold: nothing to build
# first; the notebook trains only a tiny BPE and builds tiny models, so cold is about warm).
#
# **What the paper uses.** Step-Audio-AQAA's language model is the 130B **Step-Omni**, a
# Step-1 decoder: 88 pre-norm layers, hidden 12,288, 96 query heads sharing 8 key/value
# groups (GQA), a SwiGLU MLP of 31,232, **no rotary embedding** but a **square-root ALiBi**
# bias on the attention scores, and a vocabulary of 65,536 text ids extended by **5,120 audio
# ids** (1,024 linguistic + 4,096 semantic). It answers with text and audio **interleaved
# 10 : 15** inside `<audio_start>` … `<audio_end>` markers.
#
# **What this notebook does.** Builds each piece with `aqaa_ref` (the notebook imports the
# library and re-derives a few pieces inline only to check them), on CPU in seconds:
#
# 1. the id map: text, then linguistic, then semantic ids;
# 2. a byte-level BPE for English, Mandarin, Cantonese and Japanese laid out on that map;
# 3. one Step-1 block, piece by piece, with shapes;
# 4. square-root ALiBi next to plain ALiBi;
# 5. KV-cached generation through `transformers`;
# 6. vocabulary extension and the 5× learning rate for embedding and head;
# 7. every output format of the paper's ablation, drawn with real ids, and the three
#    multi-segment concatenations; the chat template and its loss mask;
# 8. parsing and constrained decoding;
# 9. parameter and memory counts from the toy model to 130B.

# %%
from aqaa_ref.viz import roadmap
_ = roadmap(3)

# %%
import math
import os
import torch
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from aqaa_ref.formats.id_layout import AudioVocab
from aqaa_ref.backbone.attention import alibi_slopes, alibi_bias, eager_attention
from aqaa_ref.backbone.model import (Step1Config, Step1ForCausalLM, STEP1_PRESETS, count_parameters,
                               flops_per_token, kv_cache_bytes_per_token)
from aqaa_ref.backbone.vocab_extension import extend_vocab_for_audio, param_groups
from aqaa_ref.formats.text_tokenizer import train_text_tokenizer, encode_text, decode_text, audio_token
from aqaa_ref.formats.answer_format import FORMATS, Format, SpecialIds, ChatTemplate, interleave_answer, concat_segments, build_chat, wrap_audio, IGNORE_INDEX
from aqaa_ref.formats.parse import parse_answer
from aqaa_ref.formats.constrained import FormatLogitsProcessor, check_well_formed
from aqaa_ref.viz import draw_strips

QUICK = os.environ.get("AQAA_QUICK") == "1"   # read for the CI convention; every cell here is fast either way
torch.set_num_threads(1)                       # tiny tensors: one thread avoids OpenMP waits
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## 1. One id space for text and audio
#
# `AudioVocab` is the shared layout: text ids first (specials included), then the linguistic
# codebook, then the semantic codebook. The paper's numbers, and the small layout this
# notebook uses for its demos (a 512-id text block, 64 + 128 audio codes so ids stay readable).
# **What you should see:** the paper's linguistic ids start right after the text block, at 65,536,
# the semantic ids 1,024 later, at 66,560, and the last audio id is 70,655; the released vocabulary
# then pads to 74,752 with unused ids. The toy layout has no padding: 512 + 64 + 128 = 704 ids.

# %%
# NBVAL_CHECK_OUTPUT
paper = AudioVocab.paper()
toy = AudioVocab(text_vocab_size=512, n_linguistic=64, n_semantic=128)
for name, v in [("paper", paper), ("notebook toy", toy)]:
    print(f"{name:13s} text [0, {v.text_vocab_size})  linguistic [{v.linguistic_offset}, {v.semantic_offset})"
          f"  semantic [{v.semantic_offset}, {v.audio_end})  extra [{v.audio_end}, {v.size})  -> vocab {v.size}")

# %%
fig, ax = plt.subplots(figsize=(12, 1.6))
parts = [("text 0..65,535", 0, paper.text_vocab_size, "#4C72B0"),
         ("linguistic\n65,536..66,559", paper.linguistic_offset, paper.n_linguistic, "#DD8452"),
         ("semantic 66,560..70,655", paper.semantic_offset, paper.n_semantic, "#55A868"),
         ("unused 70,656..74,751", paper.audio_end, paper.extra, "#BBBBBB")]
for label, start, width, color in parts:
    ax.add_patch(Rectangle((start, 0), width, 1, color=color))
    ax.text(start + width / 2, 0.5, label, ha="center", va="center", fontsize=8)
ax.set_xlim(0, paper.size); ax.set_ylim(0, 1); ax.set_yticks([])
ax.set_xlabel("token id"); ax.set_title("Step-Audio's extended vocabulary (74,752 ids): 5,120 audio ids after the text block")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 2. The text tokenizer on that layout
#
# A byte-level BPE (HF `tokenizers`) trained here on a few sentences in four languages. Bytes
# are its alphabet, so any string round-trips. The specials copy the released tokenizer where
# it is known (pad 0, bos 1, eos = `<|EOT|>` 3, `<|BOT|>` 4); `<audio_k>` has id
# `text_vocab_size + k`; ids the BPE did not learn are padded with `<|reserved_k|>`.
# **What you should see:** `len(tok)` equal to the layout's 704, every sentence round-tripping
# (True four times), and `<audio_0>` at id 512, `<audio_64>` (the first semantic code) at 576.

# %%
# NBVAL_CHECK_OUTPUT
sentences = ["What is three plus four?", "The answer is seven.", "Three plus four makes seven.",
             "三加四等于几？", "答案是七。", "三加四係幾多？", "答案係七。", "三足す四はいくつですか？", "答えは七です。"]
tok = train_text_tokenizer(sentences * 20, toy)
print("len(tok) =", len(tok), "= toy.size:", len(tok) == toy.size)
for s in ["The answer is seven.", "答案是七。", "答案係七。", "答えは七です。"]:
    ids = encode_text(tok, s)
    print(f"{s!r:26s} -> {ids}  round trip: {decode_text(tok, ids) == s}")
print("<audio_0> ->", tok.convert_tokens_to_ids(audio_token(0)), "| <audio_64> ->", tok.convert_tokens_to_ids(audio_token(64)))

# %% [markdown]
# ## 3. One Step-1 block, piece by piece
#
# A tiny configuration (d = 32, 4 query heads in 2 KV groups) so every tensor prints. The
# block is pre-norm: `x + Attn(RMSNorm(x))`, then `x + MLP(RMSNorm(x))`. We recompute each
# piece by hand and check it against the library's modules. **What you should see:** queries of
# shape (B, H, T, hd) = (1, 4, T, 8) (hd = 32 / 4), keys and values with only G = 2 heads, so each
# KV group serves 2 query heads; the hand-built block equal to the library's layer (True); logits
# of shape (1, T, 704), one score per id of the extended vocabulary.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
cfg = Step1Config(vocab_size=toy.size, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  num_attention_groups=2, num_hidden_layers=2, max_seq_len=256, attention_kernel="eager")
model = Step1ForCausalLM(cfg).eval()
layer = model.model.layers[0]
ids = torch.tensor([encode_text(tok, "The answer is seven.")])
B, T = ids.shape
H, G, hd = cfg.num_attention_heads, cfg.num_attention_groups, cfg.head_dim
x = model.model.embed_tokens(ids)
print("ids", tuple(ids.shape), "-> embed_tokens ->", tuple(x.shape), "  (B, T, d)")

# RMSNorm: x / sqrt(mean(x^2) + eps), in float32, times a learned gain
h = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + cfg.rms_norm_eps) * layer.input_layernorm.weight
assert torch.allclose(h, layer.input_layernorm(x))
attn = layer.self_attn
q = attn.q_proj(h).view(B, T, H, hd).transpose(1, 2)
k = attn.k_proj(h).view(B, T, G, hd).transpose(1, 2)
v = attn.v_proj(h).view(B, T, G, hd).transpose(1, 2)
print("q", tuple(q.shape), "(B, H, T, hd) | k, v", tuple(k.shape), "(B, G, T, hd): each KV group serves", H // G, "query heads")

# attention with the sqrt-ALiBi bias, written out: head h reads KV group h // (H // G)
kk, vv = k.repeat_interleave(H // G, 1), v.repeat_interleave(H // G, 1)
i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
bias = -alibi_slopes(H)[:, None, None] * (i - j).clamp(min=0).float().sqrt()
scores = (q @ kk.transpose(-2, -1)) / hd ** 0.5 + bias
scores = scores.masked_fill(j > i, float("-inf"))
y = torch.softmax(scores, -1) @ vv
print("scores", tuple(scores.shape), "(B, H, T, T) -> y", tuple(y.shape))
assert torch.allclose(y, eager_attention(q, k, v, alibi_bias(alibi_slopes(H), T, T)), atol=1e-6)
a = attn.o_proj(y.transpose(1, 2).reshape(B, T, H * hd))
x1 = x + a
h2 = layer.post_attention_layernorm(x1)
m = layer.mlp.down_proj(torch.nn.functional.silu(layer.mlp.gate_proj(h2)) * layer.mlp.up_proj(h2))
print("SwiGLU: gate/up", tuple(layer.mlp.gate_proj(h2).shape), "(B, T, ff) -> down", tuple(m.shape))
out = x1 + m
full_layer = layer(x, model.model._make_attend(T, T, None, x.device, x.dtype))
print("block output", tuple(out.shape), "| equals the library's layer:", torch.allclose(out, full_layer, atol=1e-6))
logits = model(ids).logits
print("logits", tuple(logits.shape), "(B, T, vocab)")

# %%
# NBVAL_CHECK_OUTPUT
print("parameter names (as in the released checkpoints):")
for name, p in list(model.named_parameters())[:11]:
    print(f"  {name:45s} {tuple(p.shape)}")
print("  ...")
for name, p in list(model.named_parameters())[-2:]:
    print(f"  {name:45s} {tuple(p.shape)}")

# %% [markdown]
# ## 4. Square-root ALiBi
#
# Each head subtracts `slope_h · sqrt(i − j)` from the score of key `j` seen from query `i`.
# Slopes follow ALiBi: for n the largest power of two ≤ heads, `2^(−8k/n)`, k = 1..n; extra heads
# (when heads is not a power of two) take `2^(−4/n)` to the powers 1, 3, 5, … The square root
# grows slowly, so a head that looks far pays much less than with plain ALiBi: over a
# 2,000-token audio answer that is the difference between seeing the question and not.
# **What you should see:** 8 heads get 1/2, 1/4, …, 1/256; 6 heads get the 4-head slopes
# 2^-2 … 2^-8 followed by 2^-1 and 2^-3. In the figure, head 0's penalty at distance 2,000 is
# 0.5 · √2000 ≈ 22 with the square root, against 1,000 for plain ALiBi (off the plot).

# %%
# NBVAL_CHECK_OUTPUT
for n in (8, 6, 12):
    print(f"{n:2d} heads:", [round(s, 5) for s in alibi_slopes(n).tolist()])
# re-derived for 6 heads from the rule: n = 4 -> 2^-2, 2^-4, 2^-6, 2^-8; extra 2^-1, 2^-3
assert alibi_slopes(6).tolist() == [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]

# %%
slopes = alibi_slopes(8)
T_show = 24
sq = alibi_bias(slopes, T_show, T_show, sqrt=True)[0]
lin = alibi_bias(slopes, T_show, T_show, sqrt=False)[0]
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for ax, b, title in [(axes[0], sq, "sqrt ALiBi, head 0 (slope 1/2)"), (axes[1], lin, "plain ALiBi, head 0")]:
    shown = b[0].clone(); shown[shown < -1e30] = float("nan")
    im = ax.imshow(shown, cmap="viridis", vmin=-12, vmax=0); ax.set_title(title)
    ax.set_xlabel("key j"); ax.set_ylabel("query i"); fig.colorbar(im, ax=ax, fraction=0.046)
d = torch.arange(0, 2001).float()
for n, h in enumerate((0, 3, 7)):
    axes[2].plot(d, -slopes[h] * d.sqrt(), color=f"C{n}", label=f"sqrt, slope {slopes[h]:.3g}")
    axes[2].plot(d, -slopes[h] * d, "--", color=f"C{n}", label=f"plain, slope {slopes[h]:.3g}")
axes[2].set_ylim(-40, 1); axes[2].set_xlabel("distance i - j (tokens)"); axes[2].set_ylabel("bias")
axes[2].set_title("penalty vs distance"); axes[2].legend(fontsize=7)
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 5. KV cache and `generate`
#
# `Step1ForCausalLM` is a `transformers` `PreTrainedModel` with `GenerationMixin`, registered
# under `model_type="step1"`, so `generate` uses a `DynamicCache`. ALiBi depends only on
# `i − j`, so cached decoding needs no position bookkeeping: the newest query sits at position
# `past + t`. **What you should see:** cached and uncached greedy decoding agree token for token
# (True); the 16 ids themselves are arbitrary (the model is untrained), a mix of text and audio ids.

# %%
# NBVAL_CHECK_OUTPUT
prompt = torch.tensor([[1, 4] + encode_text(tok, "What is three plus four?")])
kw = dict(max_new_tokens=16, do_sample=False, eos_token_id=None, pad_token_id=0)
with_cache = model.generate(prompt, use_cache=True, **kw)
without_cache = model.generate(prompt, use_cache=False, **kw)
print("generated:", with_cache[0, prompt.shape[1]:].tolist())
print("KV-cached == full recompute:", torch.equal(with_cache, without_cache))

# %% [markdown]
# ## 6. Extending a text model with audio rows
#
# Stage 1 of pre-training adds the audio ids to a text model. `extend_vocab_for_audio` keeps
# every text row bit for bit and initialises each new row (embedding and head) as **the mean
# of the old rows plus small noise** (0.1 × their per-dimension std). A head row at the mean
# gives each new token the *mean* of the text logits, h · mean(w) = mean(h · w). How much
# probability then moves to the new ids depends on how peaked the text distribution is. By
# Jensen, exp(mean logit) ≤ mean exp(logit); call the gap g = log mean exp(l) − mean(l) ≥ 0
# (0 for flat logits, large for a confident model). Each new id gets e^−g times the average
# text probability, so the n_new new ids take n_new · e^−g / (n_text + n_new · e^−g) of the mass:
# at most their share of the vocabulary, and far less for a trained model.
#
# **What you should see:** this model is *untrained*, so its logits are nearly flat (g ≈ 0) and
# the 192 new ids should take about their share of the vocabulary, 192 / 704 = 0.273 (± 0.01),
# of the probability mass: a quarter of the mass moves. What the extension keeps exactly is the
# distribution *among the text ids*: the prompt holds only text ids, whose embeddings, head rows
# and hence hidden states are unchanged, so every text probability is its old value times the
# same factor (1 − mass on new ids): the same argmax, the same ratios, up to float rounding.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(1)
text_only = Step1ForCausalLM(Step1Config(vocab_size=toy.text_vocab_size, hidden_size=32, intermediate_size=64,
                                         num_attention_heads=4, num_attention_groups=2, num_hidden_layers=2,
                                         attention_kernel="eager")).eval()
n_text, n_new = toy.text_vocab_size, toy.n_audio
with torch.no_grad():
    logits_before = text_only(prompt).logits[0, -1]                    # (512,) the text model's next-token logits
    p_before = torch.softmax(logits_before, -1)
    extend_vocab_for_audio(text_only, toy)
    p_after = torch.softmax(text_only(prompt).logits[0, -1], -1)      # (704,) text + audio
gap = (torch.logsumexp(logits_before, 0) - math.log(n_text) - logits_before.mean()).item()   # Jensen gap g
predicted = n_new * math.exp(-gap) / (n_text + n_new * math.exp(-gap))
print("vocab", n_text, "->", text_only.config.vocab_size)
print(f"probability mass on the {n_new} new ids: {p_after[n_text:].sum():.3f} (their share of the vocab "
      f"{n_new / toy.size:.3f}; predicted from the Jensen gap g = {gap:.2f}: {predicted:.3f})")
renormalised = p_after[:n_text] / p_after[:n_text].sum()
print("distribution among the text ids unchanged (max |diff| < 1e-6):", (renormalised - p_before).abs().max().item() < 1e-6,
      "| same argmax:", p_before.argmax().item() == p_after.argmax().item())

# %% [markdown]
# So the mass *does* move: 27 % of it, as predicted, and nothing is wrong with the rule. An
# untrained model has no preference to protect; its text distribution is already uniform, and a
# mean row is exactly as likely as an average text token. In the paper's setting the model is a
# trained text model, whose logits are spread out (large g), and the same rule gives the audio
# ids a small share at the start of stage 1, so the text behaviour survives the extension
# (Exercise 1 trains the text model first and measures it). A head row at the mean is the usual
# compromise (Hewitt 2021): a row that made the new logits far lower would protect the text even
# more, but pre-training must then climb from a very low probability for every audio target.
#
# The optimizer then gives embedding and head **5×** the backbone learning rate (2e-5 vs 1e-4 in
# the paper's stage 1) and **no weight decay**: AdamW's decoupled decay shrinks every row at
# every step, also the rows of ids missing from the batch, and each new audio id is rare in a
# batch, so decay would pull the new rows towards zero between their updates. The training loop
# of notebook 04 uses this same `param_groups`. **What you should see:** three groups, the
# embedding and head (2 tensors) at 1e-4 without decay, the matrices at 2e-5 with decay 0.1, the
# RMSNorm gains at 2e-5 without decay.

# %%
# NBVAL_CHECK_OUTPUT
for g in param_groups(text_only, lr=2e-5):
    print(f"  {g['name']:15s} lr {g['lr']:.0e}  weight_decay {g['weight_decay']}  tensors {len(g['params'])}")

# %% [markdown]
# ## 7. Output formats, drawn with real ids
#
# The answer below is the tokenizer's ids for an English sentence and an LLSSS audio stream
# (2 linguistic + 3 semantic ids per 120 ms group). The audio ids here are drawn at random from
# the audio block: the audio tokenizer (another module) supplies the real ones.
#
# When the text runs out first (the usual case: text is shorter than speech), a text chunk
# shorter than X ends the text and its span carries all the remaining audio. When the audio runs
# out first, the rounds go on with empty spans `[as][ae]` (see `ratio_6_50` below).
#
# **What you should see:** 12 text ids and 30 audio ids (6 groups). `audio_only` is the 30 audio
# ids between two markers (32); `ratio_10_15` is 10 text, 15 audio, then the last 2 text and the
# other 15 audio: 12 + 30 + 2 spans × 2 markers = 46 ids, and its 15 audio ids per round are
# 3 groups, 6 linguistic + 9 semantic, hence the tri-codebook (10, 6, 9).

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
def llsss(n_groups):
    out = []
    for _ in range(n_groups):
        out += (toy.linguistic_offset + torch.randint(0, toy.n_linguistic, (2,), generator=g)).tolist()
        out += (toy.semantic_offset + torch.randint(0, toy.n_semantic, (3,), generator=g)).tolist()
    return out
answer_text = encode_text(tok, "Three plus four makes seven. The answer is seven.")
answer_audio = llsss(6)
sp = SpecialIds.from_tokenizer(tok)
print("text ids :", answer_text)
print("audio ids:", answer_audio)
seqs = {name: interleave_answer(f, answer_text, answer_audio, toy, sp) for name, f in FORMATS.items()}
for name, s in seqs.items():
    print(f"{name:12s} {len(s):3d} ids  tri-codebook {FORMATS[name].tri_codebook()}")

# %%
# one row per format; the colours (text, linguistic, semantic, markers) are the course's
# (aqaa_ref.viz.COLORS), the ids are written on the cells
draw_strips(list(seqs.items()), "the paper's ablated output formats (Table 1): same text, same audio", toy, sp,
            show_ids=True)
plt.show()

# %% [markdown]
# ### Multi-label speech: three ways to concatenate segments
#
# An answer whose style changes midway (say calm, then excited) has several segments, each
# with its own text and audio. The paper compares (Table 2): **pre-interleaved** (interleave each
# segment, then concatenate), **marker removal** (concatenate all text and all audio, interleave
# once: the boundary disappears, and the model almost never switches style) and
# **marker-preserving** (as marker removal, but each segment's audio keeps its own
# `<audio_start>`/`<audio_end>`: the best). Segment 2's ids below are the ones after the split.

# %%
# NBVAL_CHECK_OUTPUT
seg1 = (encode_text(tok, "Three plus four."), llsss(3))
seg2 = (encode_text(tok, "Seven!"), llsss(2))
fmt = Format.ratio(3, 5)
concats = {mode: concat_segments(fmt, [seg1, seg2], mode, toy, sp)
           for mode in ("pre_interleaved", "marker_removal", "marker_preserving")}
for mode, s in concats.items():
    print(f"{mode:18s}", s)

# %%
draw_strips(list(concats.items()), "three concatenations of a 2-segment answer, format ratio_3_5", toy, sp,
            show_ids=True)
plt.show()

# %% [markdown]
# ### The chat template and the loss mask
#
# Turns are `<|BOT|>{role}\n{content}<|EOT|>` (roles system, human, assistant) after one bos.
# A spoken question is its LLSSS ids between audio markers. Only the assistant's answer and its
# closing `<|EOT|>` are learned; everything else gets label −100. **What you should see:** the
# learned part starts at the answer's first text id (344, "Three") and ends with `<|EOT|>` (3);
# the bos, the three `<|BOT|>role\n` headers, the system text and the question audio are masked.

# %%
# NBVAL_CHECK_OUTPUT
tpl = ChatTemplate.from_tokenizer(tok)
question_audio = llsss(2)
answer = interleave_answer(FORMATS["ratio_10_15"], answer_text, answer_audio, toy, sp)
ids, labels = build_chat(tpl, [("system", encode_text(tok, "Answer in speech.")),
                               ("human", wrap_audio(question_audio, sp)), ("assistant", answer)])
n_prompt = sum(1 for l in labels if l == IGNORE_INDEX)
print(f"{len(ids)} ids, {n_prompt} masked (prompt), {len(ids) - n_prompt} learned")
print("prompt :", ids[:n_prompt])
print("learned:", ids[n_prompt:])
assert labels[n_prompt:] == ids[n_prompt:] and labels[-1] == sp.eot

# %% [markdown]
# ## 8. Parsing and constrained decoding
#
# `parse_answer` turns any id sequence back into text, linguistic and semantic ids; malformed
# input is repaired by fixed rules and reported, never raised. `FormatLogitsProcessor` masks the
# logits at every step so that `generate` (with its KV cache) can only produce a well-formed
# answer: here a random, untrained model is forced into the 10:15 rhythm. **What you should
# see:** the parse gives back the sentence and the exact audio ids, in rounds (10, 6, 9) then
# (2, 6, 9); the malformed sequence gets three repairs reported (an audio id in a text slot, a
# missing `<audio_end>`, an incomplete group) and keeps one whole group; the constrained sample
# is well-formed with every round (10, 6, 9), while the same model sampling freely breaks the
# format within its first few ids.

# %%
# NBVAL_CHECK_OUTPUT
parsed = parse_answer(answer + [sp.eot], toy, sp)
print("text back    :", decode_text(tok, parsed.text_ids))
print("audio back   :", parsed.audio_ids == answer_audio, "| rounds (text, L, S):", parsed.rounds(toy))
bad = [40, toy.linguistic_offset, 41, sp.audio_start] + answer_audio[:7]
broken = parse_answer(bad, toy, sp)
print("malformed    :", bad)
for issue in broken.issues:
    print("   issue     :", issue)
print("whole groups kept:", broken.aligned_audio())

# %%
# NBVAL_CHECK_OUTPUT
gen_prompt, _ = build_chat(tpl, [("human", wrap_audio(question_audio, sp))], add_generation_prompt=True)
gen_prompt = torch.tensor([gen_prompt])
fmt = FORMATS["ratio_10_15"]
proc = FormatLogitsProcessor(fmt, toy, prompt_length=gen_prompt.shape[1], special=sp)
torch.manual_seed(0)
out = model.generate(gen_prompt, max_new_tokens=80, do_sample=True, use_cache=True,
                     logits_processor=[proc], pad_token_id=sp.pad, eos_token_id=sp.eot)
gen = out[0, gen_prompt.shape[1]:].tolist()
print("well-formed prefix:", check_well_formed(gen, fmt, toy, sp, require_end=False) == [])
print("rounds (text, L, S):", parse_answer(gen, toy, sp).rounds(toy))
torch.manual_seed(0)
free = model.generate(gen_prompt, max_new_tokens=80, do_sample=True, pad_token_id=sp.pad,
                      eos_token_id=sp.eot)[0, gen_prompt.shape[1]:].tolist()
print("unconstrained, first problem:", check_well_formed(free, fmt, toy, sp, require_end=False))

# %%
draw_strips([("constrained", gen), ("unconstrained", free)],
            "a random model sampling with and without FormatLogitsProcessor", toy, sp, show_ids=True)
plt.show()

# %% [markdown]
# ## 9. From toy to 130B
#
# The analytic count (`count_parameters`) is checked against `sum(p.numel())` of each preset
# instantiated on the **meta device** (shapes only, no memory), 130B included. Memory columns:
# bf16 weights; mixed-precision AdamW training state at 16 bytes per parameter (bf16 weights and
# gradients, fp32 master weights and two moments; activations not included); the KV cache of
# one 32k-token sequence in bf16. The toy row uses this notebook's small vocabulary; 100m and 1b
# are our own steps between toy and the published shapes. **What you should see:** "meta ok"
# True in every row; the 130B preset at about 132 B parameters, of which 1.84 B are embedding and
# head; about 2.1 TB of training state at 16 bytes per parameter (hence sharding over many GPUs,
# notebook 10); and a KV cache of 2 (K, V) × 88 layers × 8 groups × 128 dims × 2 bytes × 32,768
# tokens ≈ 11.8 GB per sequence: GQA's 8 groups instead of 96 heads make it 12× smaller.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'preset':16s} {'layers':>6s} {'d':>6s} {'heads/kv':>9s} {'ffn':>6s} {'vocab':>6s} {'params':>9s} "
      f"{'meta ok':>7s} {'bf16 GB':>8s} {'train GB':>9s} {'KV@32k GB':>9s} {'GFLOP/tok':>9s}")
for name in STEP1_PRESETS:
    c = Step1Config.from_preset(name, **({"vocab_size": toy.size} if name == "toy" else {}))
    n = count_parameters(c)["total"]
    with torch.device("meta"):
        meta_n = sum(p.numel() for p in Step1ForCausalLM(c).parameters())
    nice = f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"
    print(f"{name:16s} {c.num_hidden_layers:6d} {c.hidden_size:6d} {c.num_attention_heads:4d}/{c.num_attention_groups:<4d} "
          f"{c.intermediate_size:6d} {c.vocab_size:6d} {nice:>9s} {str(meta_n == n):>7s} {2 * n / 1e9:8.1f} "
          f"{16 * n / 1e9:9.1f} {kv_cache_bytes_per_token(c) * 32768 / 1e9:9.2f} {flops_per_token(c, 4096) / 1e9:9.2f}")
c130 = Step1Config.from_preset("step-audio-130b")
print(f"\n130B per layer: {count_parameters(c130)['per_layer'] / 1e9:.4f}B; "
      f"embedding + head: {2 * c130.vocab_size * c130.hidden_size / 1e9:.2f}B")

# %% [markdown]
# ## Summary
#
# Step-1 is a plain pre-norm decoder with grouped-query attention whose only positional signal is
# a square-root ALiBi bias: distant keys are penalised gently enough that an answer 2,000 audio
# ids long still sees its question, and cached decoding needs no position bookkeeping. Text and
# audio share one id space (`AudioVocab`); a text model gets its audio rows by the mean-plus-noise
# rule, which keeps the text ids' relative probabilities exactly and, for a trained model, gives
# the new ids little mass at first (for our untrained toy, their share of the vocabulary). The
# answer format is a schedule (X text ids, Y audio ids per round, markers around the spans) that
# the sequence builder, the parser and the constrained decoder all follow, so every generated
# answer parses. Our kernels (eager, SDPA with the bias, flex_attention with the bias inside
# `score_mod`) agree with a loop-level reference in the tests; `benchmarks/bench_backbone.py`
# measures the toy preset's CPU throughput.
#
# Next: [04 pre-training and the two SFT stages](04_pretraining_and_sft.ipynb) trains this backbone,
# at toy size, on the four pre-training tasks and then on spoken questions with interleaved answers,
# with the 5× embedding learning rate and the loss mask built here.

# %% [markdown]
# ## Exercises
#
# Each exercise changes one thing this notebook names; the solution cell under it is collapsed
# (click to open). Every solution runs in a few seconds.

# %% [markdown]
# ### Exercise 1: extend a *trained* text model
#
# Section 6 extended an untrained model, and 27 % of the mass moved. Train the same text-only model
# (seed 1, d = 32, 2 layers, 512 ids) first: 100 AdamW steps (lr 3e-3), each step summing the
# next-token loss over the nine sentences, then extend it with `extend_vocab_for_audio` and measure
# again the mass on the 192 new ids, the Jensen gap g of the text logits, and whether the
# distribution among the text ids is unchanged.
#
# **Expected:** the trained model is confident (top text probability about 0.97), g rises from
# 0.01 to about 4.3, and the new ids take about 0.005 of the mass (under 1 %, against 0.27
# untrained), as the formula predicts; the text ids' relative probabilities are again unchanged.

# %% tags=["solution"] jupyter={"source_hidden": true}
torch.manual_seed(1)
trained = Step1ForCausalLM(Step1Config(vocab_size=toy.text_vocab_size, hidden_size=32, intermediate_size=64,
                                       num_attention_heads=4, num_attention_groups=2, num_hidden_layers=2,
                                       attention_kernel="eager"))
seqs = [torch.tensor([[1] + encode_text(tok, s) + [3]]) for s in sentences]       # bos ... eos
opt = torch.optim.AdamW(trained.parameters(), lr=3e-3)
for step in range(100):
    loss = sum(trained(input_ids=x, labels=x).loss for x in seqs)
    loss.backward(); opt.step(); opt.zero_grad()
trained.eval()
with torch.no_grad():
    lt = trained(prompt).logits[0, -1]
    pt = torch.softmax(lt, -1)
    extend_vocab_for_audio(trained, toy)
    pt_after = torch.softmax(trained(prompt).logits[0, -1], -1)
g_trained = (torch.logsumexp(lt, 0) - math.log(n_text) - lt.mean()).item()
pred = n_new * math.exp(-g_trained) / (n_text + n_new * math.exp(-g_trained))
print(f"after 100 steps: summed loss {loss.item():.2f}, top text probability {pt.max():.2f}")
print(f"mass on the new ids: {pt_after[n_text:].sum():.4f} (untrained: {p_after[n_text:].sum():.3f}); "
      f"Jensen gap {g_trained:.2f} -> predicted {pred:.4f}")
print("distribution among the text ids unchanged:",
      (pt_after[:n_text] / pt_after[:n_text].sum() - pt).abs().max().item() < 1e-6)

# %% [markdown]
# ### Exercise 2: how far can each head see?
#
# Call a key *out of sight* for a head when its bias reaches −10 (its attention weight is damped
# by e^−10 ≈ 5 · 10^−5 against an unpenalised key). For the 8 slopes of `alibi_slopes(8)`, find
# that distance with the square root and with plain ALiBi, first on paper, then from
# `alibi_bias` itself: the bias of one new query over a 30,000-token cache (`q_len=1`, as in
# cached decoding).
#
# **Expected:** with the square root the distance is (10 / slope)²: 400 tokens for head 0, then
# 4× more per head (1,600, 6,400, … 6.5 million for head 7); with plain ALiBi it is 10 / slope:
# 20, 40, … 2,560. Over a 2,000-token answer, plain ALiBi leaves only head 7 able to see the
# question; with the square root, only heads 0 and 1 lose it.

# %% tags=["solution"] jupyter={"source_hidden": true}
slopes8, reach = alibi_slopes(8), 10.0
T_far = 30_000
dist = torch.arange(T_far - 1, -1, -1)                                          # (T,) distance of each key
for sqrt in (True, False):
    row = alibi_bias(slopes8, 1, T_far, sqrt=sqrt)[0, :, 0]                     # (H, T): one query's bias
    measured = [int(dist[row[h] <= -reach].min()) if (row[h] <= -reach).any() else None for h in range(8)]
    formula = [round((reach / m) ** 2 if sqrt else reach / m) for m in slopes8.tolist()]
    print(f"{'sqrt ' if sqrt else 'plain'} formula {formula}")
    print(f"      measured {measured}   (None: still in sight at {T_far - 1:,} tokens)")

# %% [markdown]
# ### Exercise 3: what grouped-query attention saves at 130B
#
# Section 9 counts the 130B preset with 8 KV groups. Count it again with 96 groups (every query
# head its own keys and values: multi-head attention) and with 1 group (multi-query attention):
# parameters and the bf16 KV cache of one 32k-token sequence, with `count_parameters` and
# `kv_cache_bytes_per_token`.
#
# **Expected:** the cache scales with the number of groups: about 141.7 GB per sequence with 96
# groups, 11.8 GB with 8, 1.5 GB with 1. The parameters barely change: K and V projections are
# 2 × 12,288 × (groups × 128) per layer, so 96 groups add about 24 B parameters (132 B → 156 B)
# and 1 group saves about 2 B: GQA's gain is the cache (the memory each concurrent answer
# holds), not the weights.

# %% tags=["solution"] jupyter={"source_hidden": true}
for groups in (96, 8, 1):
    c = Step1Config.from_preset("step-audio-130b", num_attention_groups=groups)
    n = count_parameters(c)["total"]
    print(f"{groups:3d} KV groups: {n / 1e9:7.2f}B parameters, KV cache at 32k tokens "
          f"{kv_cache_bytes_per_token(c) * 32768 / 1e9:6.2f} GB")

# %% [markdown]
# ### Exercise 4: constrain the random model to the 3:5 format
#
# Section 8 forced the untrained model into the 10:15 rhythm. Use `FORMATS["ratio_3_5"]` instead
# (3 text ids, then 5 audio ids per round) with the same prompt, seed and 80 new tokens.
#
# **Expected:** still well-formed (True), now in rounds of (3, 2, 3): 3 text ids, then 5 audio ids
# that are 2 linguistic + 3 semantic (one LLSSS group per round). Each round is 3 + 5 ids plus
# two markers, 10 ids, so 80 new ids give 8 rounds.

# %% tags=["solution"] jupyter={"source_hidden": true}
fmt35 = FORMATS["ratio_3_5"]
proc35 = FormatLogitsProcessor(fmt35, toy, prompt_length=gen_prompt.shape[1], special=sp)
torch.manual_seed(0)
gen35 = model.generate(gen_prompt, max_new_tokens=80, do_sample=True, use_cache=True, logits_processor=[proc35],
                       pad_token_id=sp.pad, eos_token_id=sp.eot)[0, gen_prompt.shape[1]:].tolist()
print("well-formed prefix:", check_well_formed(gen35, fmt35, toy, sp, require_end=False) == [])
print("rounds (text, L, S):", parse_answer(gen35, toy, sp).rounds(toy))
