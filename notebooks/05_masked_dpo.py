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
# # 05 · Audio-token-masked DPO
#
# [← 04 pre-train + SFT](04_pretraining_and_sft.ipynb) · **05** · [06 5:5:1 merge →](06_model_merge.ipynb) · paper: *Training: DPO with audio tokens masked* ([arXiv 2506.08967](https://arxiv.org/abs/2506.08967))
#
# **You will build** the paper's DPO loss with the audio tokens masked out, by hand beside
# `aqaa_ref.training.dpo`, check that audio positions get exactly zero gradient, train masked and
# unmasked DPO live from SFT-1, and measure what DPO can (and cannot) learn from these preference pairs.
#
# **Prerequisites** [04 pre-training and SFT](04_pretraining_and_sft.ipynb) (SFT-1, the chat
# layout, labels −100 on the prompt, held-out scoring), [02 the semantic tokenizer and
# interleaving](02_semantic_tokenizer_and_interleaving.ipynb) (an answer is text interleaved 10:15
# with its audio ids) and [03 the backbone and vocabulary](03_backbone_and_vocabulary.ipynb) (one id
# space: text, then linguistic, then semantic). The DPO objective itself is restated below.
#
# **Run time** (2-core CPU, measured): warm about 20 s, cold about 2 min (cold: synthesising and
# tokenising the toy corpus if notebook 04 has not, training the live DPO runs of section 5 and the
# exercises, and generating the held-out answers that a warm run reads from the cache).
# `AQAA_QUICK=1` (CI) trains the live runs for fewer steps and scores fewer items.

# %%
from aqaa_ref.viz import roadmap
roadmap(5);  # noqa: E703

# %% [markdown]
# **What the paper did.** After SFT-1, Step-Audio-AQAA runs DPO with one change: the reward of an
# answer counts only its **text** tokens. With A the set of audio token ids,
#
# $$r(x, y) = \sum_t \mathbb{1}[y_t \notin A]\,\big(\log \pi(y_t \mid x, y_{<t}) - \log \pi_{\text{ref}}(y_t \mid x, y_{<t})\big),
# \qquad \mathcal{L} = -\log \sigma\big(\beta\,(r(x, y_w) - r(x, y_l))\big)$$
#
# so the preference signal flows only through text positions; the audio ids that follow each text
# chunk are left to what SFT taught. The paper reports that *unmasked* DPO misaligned text and
# audio and damaged audio generation. β is not published; log-probs are **summed** over kept
# tokens (as in the original DPO code and TRL: averaging is known to destabilise).
#
# **What this notebook does.**
#
# 1. builds preference pairs automatically: chosen = the correct spoken answer, rejected = a
#    wrong answer spoken in the same style, or the evasion *"sorry, I did not hear you"*;
# 2. draws the mask over real ids, masked and unmasked, and shows the collated batch;
# 3. computes the loss by hand (explicit `log_softmax` / index loops) beside
#    `aqaa_ref.training.dpo.masked_dpo_loss`, and checks they are equal (and that an inverted mask is not);
# 4. checks that audio positions receive **exactly zero** gradient in masked mode;
# 5. trains masked and unmasked DPO **live**, from the shipped SFT-1 (30 steps of 8 pairs each,
#    about half a minute apiece), and compares curves, probability shifts and held-out accuracy
#    with the shipped masked-DPO stage (the recipe's full run, trained by `python -m aqaa_ref train`);
# 6. puts three measurements together (SFT-1 already ranks the pairs, the evasions are separated
#    from the start, DPO lowers the chosen answer's own probability) to say what DPO can learn here.
#
# The models are the toy ones shipped in `checkpoints/toy/` (SFT-1 and the masked DPO stage).

# %%
import os, json, math, time
from collections import Counter
import torch
import torch.nn.functional as F
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from aqaa_ref import checkpoints
from aqaa_ref.training.recipe import Recipe, Assets, run_stage
from aqaa_ref.training.loop import TrainConfig
from aqaa_ref.training.sequences import preference_pairs, EVASIONS
from aqaa_ref.training.dpo import kept_positions, sequence_logps, masked_dpo_loss, make_dpo_loss_fn, reference_logps
from aqaa_ref.formats.id_layout import IGNORE_INDEX
from aqaa_ref.training.loop import latest_checkpoint
from aqaa_ref.training.sequences import pad_collate
from aqaa_ref.formats.id_layout import AudioVocab
from aqaa_ref.data.styles import assistant
from aqaa_ref.metrics import wilson_interval as wilson   # the 95 % Wilson interval (low, high) of k / n

QUICK = os.environ.get("AQAA_QUICK") == "1"   # CI: shorter live runs, fewer items scored
SHIPPED = checkpoints.default_folder("toy")   # checkpoints/toy in this repository
recipe = Recipe.from_preset("toy")
print("quick mode" if QUICK else "full mode", "| the toy recipe's stages from", "/".join(SHIPPED.parts[-2:]))
print(f"DPO settings: beta {recipe.dpo_beta}, masked {recipe.dpo_masked}, evasion fraction {recipe.dpo_evasion_fraction}, "
      f"{recipe.dpo.steps} steps x {recipe.dpo.batch_size} pairs, lr {recipe.dpo.lr}")

# %%
assets = Assets(recipe, progress=False, pretrained=SHIPPED)   # shipped tokenizers and stages, the corpus built here
print(assets.corpus, "| vocab", assets.vocab)

# %%
from aqaa_ref.viz import COLORS, display_kind, draw_strips, pretty   # ids coloured by kind; bool rows drawn as mask bars

sp, vocab, tok, builder = assets.builder.special, assets.vocab, assets.tok, assets.builder

# %% [markdown]
# ## 1. Preference pairs, built automatically
#
# `preference_pairs` makes one pair per single-segment training item. Chosen is the item's correct
# answer (text interleaved 10:15 with its reference audio). Rejected, for a seeded
# `dpo_evasion_fraction` of items, is the **evasion** the Step-Audio report lists among rejected
# responses ("sorry, I did not hear you", in the item's language, spoken in the requested style);
# otherwise it is a **wrong answer in the same style**: another training item's answer with the same
# language and style but different text. Both sides share the prompt, so the pair differs only in
# the answer: what DPO learns is *which answer*, not *how to speak*.
#
# **What you should see:** a little fewer pairs than training items (multi-segment items make
# none), and an evasion share of 30 ± 2 % (each item draws its kind with probability
# `dpo_evasion_fraction` = 0.3). The evasion's rejected side is long (two text chunks and dozens
# of audio ids), its chosen side as short as the answer.

# %%
train_items = assets.corpus.split("train")
evasion = assets.evasion_audio()               # (language, style) -> LLSSS ids of the evasion
pairs = preference_pairs(builder, train_items, evasion, recipe.seed, recipe.dpo_evasion_fraction)
kind_counts = Counter(p['kind'] for p in pairs)
print(f"{len(pairs)} pairs from {len(train_items)} training items:", dict(kind_counts),
      f"-> evasion share {kind_counts['evasion'] / len(pairs):.1%}")
print(f"evasion renderings: {len(evasion)} (language, style) combinations, e.g. {sorted(evasion)[:4]}")

def answer_part(ids, labels):
    """The learned span of a chat sequence (the assistant's answer and its <|EOT|>)."""
    return [i for i, l in zip(ids, labels) if l != IGNORE_INDEX]

def shortest(kind):
    return min((p for p in pairs if p["kind"] == kind), key=lambda p: len(p["chosen_input_ids"]) + len(p["rejected_input_ids"]))

examples = {kind: shortest(kind) for kind in ("wrong_answer", "evasion")}
for kind, p in examples.items():
    c, r = answer_part(p["chosen_input_ids"], p["chosen_labels"]), answer_part(p["rejected_input_ids"], p["rejected_labels"])
    print(f"\n{kind}:")
    print("  chosen  :", pretty(c, tok, vocab, sp))
    print("  rejected:", pretty(r, tok, vocab, sp))

# %%
lang, style = sorted(evasion)[0]
wav, sr, _ = assistant(EVASIONS[lang], lang, style).synthesize()
print(f"the evasion in ({lang}, {style}): {EVASIONS[lang]!r} -> {len(evasion[(lang, style)])} audio ids")
display(Audio(wav, rate=sr))

# %% [markdown]
# ## 2. The mask over real ids
#
# `kept_positions(labels, vocab, masked)` decides which label positions enter the reward: it
# always drops label −100 (system turn, question, `<|BOT|>assistant\n`, padding) and, when
# masked, also drops audio ids (linguistic and semantic). Text ids, the audio markers and the
# closing `<|EOT|>` are not in A, so they stay. The worked example from `aqaa_ref.training.dpo`'s docstring
# (a made-up layout: text < 1000 ≤ audio):

# %%
# NBVAL_CHECK_OUTPUT
demo = AudioVocab(text_vocab_size=1000, n_linguistic=8, n_semantic=8)   # linguistic 1000..1007, semantic 1008..1015
labels = torch.tensor([[-100, -100, 17, 1003, 1007, 1010, 42, 1001]])
print("labels     ", labels[0].tolist())
print("kept masked", kept_positions(labels, demo, masked=True)[0].int().tolist())
print("kept all   ", kept_positions(labels, demo, masked=False)[0].int().tolist())

# %% [markdown]
# **What you should see** on the shortest real wrong-answer pair (a one-word answer): of each
# side's answer only about 5 positions are kept when masked (the text ids, the two audio markers,
# `<|EOT|>`), and masking drops more positions than it keeps: every audio id of the spoken word.

# %%
p = examples["wrong_answer"]
rows = []
for side in ("chosen", "rejected"):
    lab = torch.tensor([p[f"{side}_labels"]])
    rows += [(side, p[f"{side}_input_ids"]),
             ("  kept, masked", kept_positions(lab, vocab, masked=True)[0].tolist()),
             ("  kept, unmasked", kept_positions(lab, vocab, masked=False)[0].tolist())]
    km, ku = kept_positions(lab, vocab, True).sum().item(), kept_positions(lab, vocab, False).sum().item()
    print(f"{side:8s} {lab.shape[1]} ids: {(lab == IGNORE_INDEX).sum().item()} prompt, {km} kept when masked "
          f"(text, markers, EOT), {ku - km} audio dropped when masked")
draw_strips(rows, "a wrong-answer pair: which positions carry the DPO reward", vocab, sp,
            mark_names=("kept in the reward", "dropped"))
plt.show()

# %% [markdown]
# ### The collated batch
#
# `pad_collate` right-pads every list-valued key of a batch of pairs: ids with pad 0, every
# `*labels` key with −100 (so padding is never kept), and adds an `attention_mask` beside each
# `*input_ids`. The reference log-probs (floats) are stacked; the `kind` string is metadata and
# is dropped. A made-up batch first, so the whole thing prints:

# %%
# NBVAL_CHECK_OUTPUT
toy_pairs = [dict(chosen_input_ids=[1, 4, 9, 17, 1003, 1010, 3], chosen_labels=[-100, -100, -100, 17, 1003, 1010, 3],
                  rejected_input_ids=[1, 4, 9, 42, 3], rejected_labels=[-100, -100, -100, 42, 3],
                  ref_chosen=-3.5, ref_rejected=-2.0, kind="wrong_answer"),
             dict(chosen_input_ids=[1, 4, 9, 18, 3], chosen_labels=[-100, -100, -100, 18, 3],
                  rejected_input_ids=[1, 4, 9, 50, 51, 1001, 1012, 3], rejected_labels=[-100, -100, -100, 50, 51, 1001, 1012, 3],
                  ref_chosen=-1.0, ref_rejected=-4.0, kind="evasion")]
b = pad_collate(toy_pairs)
for k, t in b.items():
    print(f"{k:26s} {tuple(t.shape)}  {t.tolist()}")
for side in ("chosen", "rejected"):
    print(f"kept ({side}, masked)".ljust(26), kept_positions(b[f"{side}_labels"], demo, True).int().tolist())

# %%
batch_pairs = [examples["wrong_answer"], examples["evasion"]] + [q for q in pairs[:6] if q not in examples.values()][:2]
real = pad_collate(batch_pairs)
print({k: tuple(t.shape) for k, t in real.items()})
print("kinds:", [q["kind"] for q in batch_pairs], "(strings are not collated)")

# %% [markdown]
# ## 3. The loss by hand, beside the library's
#
# Policy π = the masked-DPO checkpoint, reference π_ref = SFT-1 (where DPO started), so the
# log-ratios are not zero. Both models run once on the collated batch; the hand version then
# walks every sequence position by position: position t−1 predicts the token at t; skip label −100;
# in masked mode skip audio ids; add `log_softmax(logits[t−1])[y_t]`. Then
# r = Σ log π − Σ log π_ref and loss = −log σ(β (r_w − r_l)) = log(1 + e^{−β (r_w − r_l)}).
#
# **What you should see:**
#
# - hand and library losses equal to 5 decimals for every pair, masked and unmasked; the
#   inverted mask (summing over the audio ids instead) gives other numbers;
# - a pair's loss is below ln 2 = 0.6931 exactly when r_w > r_l (the policy moved towards the
#   chosen answer more than towards the rejected one), above ln 2 when it did the opposite;
# - the evasion pairs at a loss of 0.0000: the shipped DPO stage has pushed the evasion's text
#   hundreds of nats below SFT-1 (r_l ≪ 0), so σ(β (r_w − r_l)) = 1 to float precision;
# - a control: **at the start of DPO the policy *is* the reference**, so every log-ratio is 0 and
#   every loss is ln 2 exactly. The notebook's batch does not test that (its policy is the trained
#   DPO stage), so the cell also scores SFT-1 against itself, where all four losses must be
#   0.693147 (not just close: r_w and r_l are differences of identical numbers).

# %%
policy, reference = assets.load_stage("dpo"), assets.load_stage("sft1")   # the shipped masked DPO stage and SFT-1
beta = recipe.dpo_beta

with torch.no_grad():
    logits = {(name, side): m(input_ids=real[f"{side}_input_ids"], attention_mask=real[f"{side}_attention_mask"]).logits.float()
              for name, m in (("policy", policy), ("reference", reference)) for side in ("chosen", "rejected")}

def hand_logps(logits, labels, keep_token):
    """logits (B, T, V), labels (B, T) -> (B,) float64: sum of log p(y_t) over positions where keep_token(y_t)."""
    out = []
    for b in range(labels.shape[0]):
        total = 0.0
        for t in range(1, labels.shape[1]):                  # logits at t-1 predict the token at t
            y = int(labels[b, t])
            if y == IGNORE_INDEX or not keep_token(y):             # prompt / padding, or a dropped token
                continue
            total += torch.log_softmax(logits[b, t - 1], dim=-1)[y].item()
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)

def hand_dpo(keep_token, logits=logits):
    lp = {(n, s): hand_logps(logits[(n, s)], real[f"{s}_labels"], keep_token) for n, s in logits}
    r_w = lp[("policy", "chosen")] - lp[("reference", "chosen")]
    r_l = lp[("policy", "rejected")] - lp[("reference", "rejected")]
    z = beta * (r_w - r_l)
    return torch.tensor([math.log1p(math.exp(-zi)) for zi in z.tolist()], dtype=torch.float64), r_w, r_l

def library_dpo(masked):
    lp = {(n, s): sequence_logps(logits[(n, s)], real[f"{s}_labels"], kept_positions(real[f"{s}_labels"], vocab, masked))
          for n, s in logits}
    loss, stats = masked_dpo_loss(lp[("policy", "chosen")], lp[("policy", "rejected")],
                                  lp[("reference", "chosen")], lp[("reference", "rejected")], beta)
    return loss, stats

text_only = lambda y: not vocab.is_audio(y)            # the indicator 1[y_t not in A]
hand_m, r_w, r_l = hand_dpo(text_only)
lib_m, stats = library_dpo(masked=True)
hand_u, _, _ = hand_dpo(lambda y: True)
lib_u, _ = library_dpo(masked=False)
hand_inv, _, _ = hand_dpo(lambda y: vocab.is_audio(y))  # the inverted-mask bug: sum over the *dropped* tokens
print(f"{'pair':13s} {'r_w':>8s} {'r_l':>8s} {'hand':>9s} {'library':>9s} {'unmasked':>9s} {'inverted':>9s}")
for i, q in enumerate(batch_pairs):
    print(f"{q['kind']:13s} {r_w[i]:8.3f} {r_l[i]:8.3f} {hand_m[i]:9.5f} {lib_m[i]:9.5f} {lib_u[i]:9.5f} {hand_inv[i]:9.5f}")
print("library stats:", {k: round(v, 4) for k, v in stats.items()})
# the control: step 0 of DPO, policy = reference = SFT-1
at_start = {("policy", s): logits[("reference", s)] for s in ("chosen", "rejected")}
at_start.update({("reference", s): logits[("reference", s)] for s in ("chosen", "rejected")})
hand_0, _, _ = hand_dpo(text_only, at_start)
print("policy = reference (SFT-1 against itself):", [f"{v:.6f}" for v in hand_0.tolist()], f"  ln 2 = {math.log(2):.6f}")

# %% [markdown]
# All four predictions hold: hand == library, the inverted mask differs, the evasion pairs sit at
# 0.0000 (r_l about −190 and −210 nats), and SFT-1 against itself gives ln 2 for all four pairs.
# One wrong-answer pair is *above* ln 2 (0.726): the shipped DPO stage ranks it the wrong way
# round (r_w −2.7 < r_l −2.1); note that both of its rewards are negative, i.e. DPO lowered the
# log-probability of the chosen answer as well as of the rejected one. Section 6 comes back to that.
#
# The training loss function (`make_dpo_loss_fn`) does the same from a batch whose reference
# log-probs were computed once, before training, by `reference_logps`: it returns the sum over
# pairs divided by the step's pair count.

# %%
with torch.no_grad():
    with_ref = pad_collate(reference_logps(reference, batch_pairs, vocab, masked=True))
    fn_loss, fn_stats = make_dpo_loss_fn(vocab, beta, masked=True)(policy, with_ref, len(batch_pairs))
print(f"make_dpo_loss_fn: {fn_loss.item():.5f}   mean of the hand losses: {hand_m.mean().item():.5f}")
ok_masked = torch.allclose(hand_m, lib_m.double(), rtol=1e-5, atol=1e-5)
ok_unmasked = torch.allclose(hand_u, lib_u.double(), rtol=1e-5, atol=1e-5)
ok_fn = math.isclose(fn_loss.item(), hand_m.mean().item(), rel_tol=1e-5, abs_tol=1e-5)
inverted_differs = not torch.allclose(hand_inv, lib_m.double(), rtol=1e-3, atol=1e-4)
start_is_ln2 = all(v == math.log(2) for v in hand_0.tolist())
assert ok_masked and ok_unmasked and ok_fn and inverted_differs and start_is_ln2

# %%
# NBVAL_CHECK_OUTPUT
print("masked DPO,   hand == masked_dpo_loss  equal:", ok_masked)
print("unmasked DPO, hand == masked_dpo_loss  equal:", ok_unmasked)
print("training loss fn == mean of hand losses equal:", ok_fn)
print("an inverted mask gives another loss:          ", inverted_differs)
print("policy == reference: every loss is ln 2 exactly:", start_is_ln2)

# %% [markdown]
# ## 4. Audio positions get exactly zero gradient
#
# In masked mode an audio position's log-prob is multiplied by 0 before the sum, so the gradient
# of the loss with respect to the logits at every position that *predicts an audio id* is exactly
# 0.0, not merely small. (Parameters shared by all positions, the head rows of audio ids included,
# still move: the softmax at a text position normalises over every id. Masking removes the direct
# preference signal on audio tokens, not all change to them.) Below: the gradient reaching each
# position's logits for one pair, chosen side, masked vs unmasked.
#
# **What you should see:** masked, the largest |gradient| at audio-predicting positions is
# `0.000e+00`; unmasked it is non-zero, of the order of 10⁻²; the text positions get a gradient of
# about the same size (order 10⁻¹) in both modes.

# %%
one = pad_collate([examples["wrong_answer"]])
target = one["chosen_labels"][0, 1:]                     # position t predicts labels[t + 1]
is_audio_target = vocab.is_audio(target)
is_text_target = (target != IGNORE_INDEX) & ~is_audio_target
grad_norms = {}
for masked in (True, False):
    ref = reference_logps(reference, [examples["wrong_answer"]], vocab, masked=masked)[0]
    policy.zero_grad()
    lp, side_logits = {}, {}
    for side in ("chosen", "rejected"):
        out = policy(input_ids=one[f"{side}_input_ids"], attention_mask=one[f"{side}_attention_mask"]).logits
        out.retain_grad()                                # keep d loss / d logits
        side_logits[side] = out
        lp[side] = sequence_logps(out, one[f"{side}_labels"], kept_positions(one[f"{side}_labels"], vocab, masked))
    loss, _ = masked_dpo_loss(lp["chosen"], lp["rejected"], torch.tensor([ref["ref_chosen"]]),
                              torch.tensor([ref["ref_rejected"]]), beta)
    loss.sum().backward()
    g = side_logits["chosen"].grad[0, :-1].abs().sum(-1)  # (T-1,) |d loss / d logits| per predicting position
    grad_norms[masked] = g
    print(f"{'masked  ' if masked else 'unmasked'} loss {loss.item():.4f}: max |grad| at audio-predicting positions "
          f"{g[is_audio_target].max().item():.3e}, at text positions {g[is_text_target].max().item():.3e}")
policy.zero_grad()
zero_audio = grad_norms[True][is_audio_target].eq(0).all().item()
assert zero_audio and grad_norms[True][is_text_target].gt(0).all() and grad_norms[False][is_audio_target].gt(0).any()

# %%
# NBVAL_CHECK_OUTPUT
print("masked:   gradient at audio-predicting positions exactly zero:", zero_audio,
      "| max =", grad_norms[True][is_audio_target].max().item())
print("masked:   every text-predicting position gets gradient:       ", grad_norms[True][is_text_target].gt(0).all().item())
print("unmasked: audio-predicting positions get gradient:             ", grad_norms[False][is_audio_target].gt(0).any().item())

# %%
fig, axes = plt.subplots(2, 1, figsize=(14, 4.6), sharex=True)
colors = ["#DDDDDD" if t == IGNORE_INDEX else COLORS[display_kind(int(t), vocab, sp)] for t in target]
for ax, masked in zip(axes, (True, False)):
    g = grad_norms[masked].clamp(min=1e-12)
    ax.bar(range(len(g)), g, color=colors, width=0.9)
    ax.set_yscale("log"); ax.set_ylim(1e-9, None)
    ax.set_ylabel("|dL/dlogits|"); ax.set_title(("masked" if masked else "unmasked") + " DPO: gradient reaching each position "
                                                 f"of one pair's chosen side (n = 1 pair, {len(g)} positions; coloured by "
                                                 "the token it predicts; grey = prompt; exact zeros fall below the log axis)", fontsize=9)
axes[1].set_xlabel("position t (predicts token t+1)")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 5. Masked vs unmasked DPO, from the same SFT-1 checkpoint, trained live
#
# Both runs start from the shipped SFT-1 and differ only in the mask (in the reward *and* in
# the precomputed reference log-probs). `assets.variant(...)` changes the recipe and keeps the
# corpus and tokenizers: SFT-1's key is unchanged, so it still loads from `checkpoints/toy`, and
# only DPO trains, into its own cache folder. To keep this about half a minute apiece (on an idle
# 2-core CPU; the seconds printed are those of the run that filled the cache), each live run takes a short schedule (30 steps of 8 pairs, a seeded subset of 240 pairs, the recipe's
# learning rate and β); the recipe's own run (60 steps of 16 pairs over every training pair) is
# the shipped `dpo` stage, compared below.
#
# **What you should see:** the loss starts at ln 2 = 0.6931 (policy = reference at step 0, as in
# section 3's control) and falls. One could also expect the unmasked run to fall *faster*, since
# its reward sums over several times more tokens (section 2's counts); check that against the curves.

# %%
steps = 6 if QUICK else 30

def live_run(masked=True, lr=recipe.dpo.lr, beta=recipe.dpo_beta):
    """A short DPO run from the shipped SFT-1 (steps x 8 pairs): (variant assets, run info); cached after the first call."""
    cfg = TrainConfig(steps=steps, batch_size=8, lr=lr, warmup_steps=2, checkpoint_every=steps)
    v = assets.variant(name="toy-live-dpo", dpo=cfg, dpo_masked=masked, dpo_beta=beta, dpo_max_pairs=steps * cfg.batch_size)
    return v, run_stage("dpo", v, progress=True)

t0 = time.perf_counter()
runs = {name: live_run(masked) for name, masked in (("masked", True), ("unmasked", False))}
print(f"(this cell: {time.perf_counter() - t0:.0f} s; a second run reads the cache)")
for name, (v, info) in runs.items():
    print(f"{name:8s} {info['pairs']} pairs, {len(info['losses'])} steps, loss {info['losses'][0]:.4f} -> "
          f"{info['final_loss']:.4f}, trained in {info['seconds']:.0f} s when first run; SFT-1 from the folder: {v.is_shipped('sft1')}")
assert runs["masked"][0].recipe.stage_key("dpo") != runs["unmasked"][0].recipe.stage_key("dpo")

# %%
metrics = {name: json.loads((latest_checkpoint(v.recipe.stage_dir("dpo")) / "trainer.json").read_text())["metrics"]
           for name, (v, _) in runs.items()}
batch = runs["masked"][0].recipe.dpo.batch_size
fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
for name, ms in metrics.items():
    steps_ = [m["step"] for m in ms]
    axes[0].plot(steps_, [m["loss"] for m in ms], label=name)
    axes[1].plot(steps_, [m["reward_accuracy"] for m in ms], label=name)
    axes[2].plot(steps_, [m["reward_chosen"] - m["reward_rejected"] for m in ms], label=name)
axes[0].axhline(math.log(2), color="k", ls=":", lw=1, label="ln 2 (no preference)")
axes[0].set_title(f"DPO loss, n = {batch} pairs per step"); axes[1].set_title(f"reward accuracy (r_w > r_l), n = {batch} pairs per step")
axes[2].set_title(f"reward margin β (r_w − r_l), batch mean of n = {batch}")
axes[0].set_ylabel("loss"); axes[1].set_ylabel("share of pairs"); axes[2].set_ylabel("β × log-ratio")
for ax in axes:
    ax.set_xlabel("optimizer step"); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# Measured, the first half of that expectation holds (both start at 0.6931 and fall), the second
# only in part: the unmasked run's mean margin does grow faster (about 8 against 4 at the end),
# but its **loss falls less** (0.58 against 0.44 after 30 steps; with 8 pairs a step the curves
# are noisy, so read the trend, not one step). The mean hides the spread. Summing over several
# times more tokens gives some pairs very large margins (an evasion's rejected side holds dozens
# of audio tokens whose log-ratios all add up), and the loss, which flattens towards 0 for a pair
# already well separated, gains little from them, while the other pairs separate no faster. So
# the margin is a poor progress measure for unmasked DPO; read the loss, and the held-out tables below.

# %% [markdown]
# ### Where did the probability move? Teacher-forced log-prob shifts on held-out answers
#
# On held-out test items (chosen = the correct answer with its reference audio), the change of
# the per-token log-prob from SFT-1 to each DPO model, averaged separately over text tokens and
# audio tokens.
#
# **What you should see:** masked DPO leaves audio nearly where SFT-1 had it: a mean Δ log p on
# audio tokens within ±0.05 nats per token, several times smaller than its shift on text; the
# unmasked run moves audio about as much as text or more. If DPO only made the correct answer
# more likely, the text shift would be positive.

# %%
# score_memoised: answer_items + score_answers, memoised on disk by (weights, format, items);
# by_condition: summarize overall and per test condition; strided: every k-th item (what evaluate_stages(limit=n) scores)
from aqaa_ref.inference.generation import score_memoised, by_condition
from aqaa_ref.data import strided

# %%
N_EVAL = 16 if QUICK else 64
eval_items = strided(assets.corpus.split("test"), N_EVAL)
models = {"sft1": reference, "masked DPO": policy,                       # shipped: the recipe's full run
          "live masked": runs["masked"][0].load_stage("dpo"), "live unmasked": runs["unmasked"][0].load_stage("dpo")}

@torch.no_grad()
def token_logps(model, items, bs=16):
    """Teacher-forced log p of every answer token of each item's AQTAA example -> (logp, is_audio) flat tensors."""
    lps, auds = [], []
    for i in range(0, len(items), bs):
        b = pad_collate([builder.sft_example(it) for it in items[i:i + bs]])
        logp = torch.log_softmax(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float(), -1)
        lab = b["labels"][:, 1:]
        keep = lab != IGNORE_INDEX
        lps.append(logp.gather(-1, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1)[keep]); auds.append(vocab.is_audio(lab)[keep])
    return torch.cat(lps), torch.cat(auds)

tf = {name: token_logps(m, eval_items) for name, m in models.items()}
is_aud = tf["sft1"][1]
print(f"{len(eval_items)} held-out answers: {int((~is_aud).sum())} text tokens (incl. markers, EOT), {int(is_aud.sum())} audio tokens")
shift = {}
for name in ("masked DPO", "live masked", "live unmasked"):
    d = tf[name][0] - tf["sft1"][0]
    shift[name] = (d[~is_aud].mean().item(), d[is_aud].mean().item(), d[is_aud].abs().mean().item())
    print(f"{name:13s} mean Δ log p: text {shift[name][0]:+.4f}   audio {shift[name][1]:+.4f}   (mean |Δ| on audio {shift[name][2]:.4f})")

# %% [markdown]
# The mask does what the paper wants: the shipped and live masked runs barely move the audio
# (mean Δ −0.04 and −0.01 nats per token, mean |Δ| 0.11 and 0.06, against −0.47 and 0.52 unmasked). But the text shift is **negative** for
# every DPO model: on held-out questions, the correct answer's own text became *less* likely.
# That is the opposite of "if DPO only made the correct answer more likely"; section 6 explains it.
#
# ### Held-out generation: text accuracy and audio-token accuracy
#
# Greedy constrained answers to the same fixed held-out subset as notebook 04 (every k-th test
# item), scored the same way; SFT-1's answers come from notebook 04's memo when it ran first.
# With 64 items (12 to 18 per test condition), one item is 1.6 points of the overall figure and
# 6 to 8 points of a condition's: the table prints n and a 95 % interval for the text accuracy.
# No full-set figure exists for these stages: the 324-item evaluation in
# `checkpoints/toy/provenance.json` scores only the final merged model, end to end (notebook 09).
#
# **What you should see (if DPO helps, as in the paper):** text accuracy at or above SFT-1's for
# the masked runs, and audio-token accuracy kept near SFT-1's by the mask but lowered by unmasked DPO.

# %%
gen_raw = {name: score_memoised(m, builder, eval_items) for name, m in models.items()}   # per-item scores
gen_scores = {name: by_condition(s, eval_items) for name, s in gen_raw.items()}
conds = list(gen_scores["sft1"])
print(f"{len(eval_items)} held-out items: text accuracy [95 % Wilson interval] / audio-token accuracy")
print(f"{'':14s}" + "".join(f"{c + ' n=' + str(gen_scores['sft1'][c]['n']):>24s}" for c in conds))
for name, res in gen_scores.items():
    cells = []
    for c in conds:
        n, acc = res[c]["n"], res[c]["text_accuracy"]
        lo, hi = wilson(round(acc * n), n)
        cells.append(f"{acc:4.0%} [{lo:3.0%}-{hi:3.0%}] /{res[c]['audio_token_accuracy']:4.0%}")
    print(f"{name:14s}" + "".join(f"{cell:>24s}" for cell in cells), f"  well-formed {res['all']['well_formed']:.0%}")
same = {name: sum(a.text_correct == b.text_correct for a, b in zip(gen_raw["sft1"], s)) for name, s in gen_raw.items()}
print("items whose text verdict equals SFT-1's:", {k: f"{v}/{len(eval_items)}" for k, v in same.items() if k != "sft1"})

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 3.6))
names = list(gen_scores)
colors = ["#888888", "#4C72B0", "#8DA0CB", "#C44E52"]
n_all = len(eval_items)
for ax, (metric, title) in zip(axes[:2], [("text_accuracy", "text accuracy"), ("audio_token_accuracy", "audio-token accuracy")]):
    vals = [gen_scores[n]["all"][metric] for n in names]
    if metric == "text_accuracy":                                  # a share of items: Wilson interval
        ci = [wilson(round(v * n_all), n_all) for v in vals]
    else:                                                          # a mean of per-item fractions: ±1.96 standard errors
        sds = [torch.tensor([s.audio_token_accuracy for s in gen_raw[n]]).std().item() for n in names]
        ci = [(v - 1.96 * sd / n_all ** 0.5, v + 1.96 * sd / n_all ** 0.5) for v, sd in zip(vals, sds)]
    ax.bar(names, vals, color=colors, yerr=[[v - lo for v, (lo, _) in zip(vals, ci)], [hi - v for v, (_, hi) in zip(vals, ci)]],
           capsize=3)
    ax.set_ylim(0, 1); ax.set_ylabel(title); ax.set_title(f"held-out {title}, n = {n_all} items (95 % interval)")
    ax.tick_params(axis="x", labelsize=8)
    for i, v in enumerate(vals):
        ax.text(i + 0.05, v + 0.01, f"{v:.0%}", ha="left", fontsize=8)
w = 0.27
for j, name in enumerate(("masked DPO", "live masked", "live unmasked")):
    axes[2].bar([k + (j - 1) * w for k in range(2)], shift[name][:2], w, label=name, color=colors[j + 1])
axes[2].set_xticks([0, 1]); axes[2].set_xticklabels(["text tokens", "audio tokens"]); axes[2].axhline(0, color="k", lw=0.8)
axes[2].set_ylabel("mean Δ log p per token"); axes[2].set_title(f"shift from SFT-1 on n = {n_all} held-out answers")
axes[2].legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# Half of the prediction fails. The audio part holds: unmasked DPO has the lowest audio-token
# accuracy (36 % against SFT-1's 58 %), the masked runs lose less (41 %, 47 %). The text part does
# not: **every** DPO run is *below* SFT-1 on text accuracy (41 %, 42 %, 48 % against 58 %). The
# intervals of 64 items overlap, but the drop is consistent across the three runs and across
# conditions, and it is what the negative text shift above predicts: greedy decoding emits the
# most likely text, and DPO made the correct text less likely. Compared item by item (the same 64
# items for every model), the DPO runs change SFT-1's verdict on 10 to 13 items, mostly from right
# to wrong.

# %% [markdown]
# ## 6. What can DPO learn from these pairs?
#
# Three things seen above belong together: the evasion pairs sit at loss 0.0000 (section 3), the
# chosen answer's own text got less likely (section 5), and text accuracy fell. Here they are
# measured on the same footing: **held-out preference pairs**, built from the 64 held-out items
# exactly as the training pairs were built from the training items, scored by each model. For
# each pair and model: the summed text log p of the chosen answer and of the rejected one
# (`reference_logps` does exactly that for any model it is given), their margin, whether the
# model ranks the pair right (log p(chosen) > log p(rejected)), and the DPO loss with SFT-1 as
# the reference.
#
# **What you should see:**
#
# - **SFT-1 already ranks about 95 % of the pairs right** (the recorded DPO ablation of
#   notebook 09, an earlier toy training run, counted 56 of 58 held-out pairs): all evasion pairs,
#   and most wrong-answer pairs. A pair
#   ranked right before DPO starts has little to teach.
# - **The evasion pairs are separated from the start:** SFT-1's margin on them is about 20 times
#   its margin on wrong-answer pairs (hundreds of nats: the evasion is long and never what the
#   model says), and after DPO their loss is about 0. A pair at loss 0 gives no gradient
#   (d loss / d margin = −β σ(−β margin) ≈ 0), so after the first steps DPO learns only from the
#   wrong-answer pairs.
# - **Likelihood displacement:** for every DPO model the chosen answer's log p is *lower* than
#   SFT-1's, the rejected answer's lower still, so the margin grows while the correct answer
#   loses probability. DPO's loss only sees the *difference* r_w − r_l; lowering both, the
#   rejected faster, is a way to raise it (Razin et al. 2024, "Unintentional unalignment:
#   likelihood displacement in DPO"; Pal et al. 2024, "Smaug", for the same effect on close pairs).
# - Held-out ranking does not get better: pair accuracy stays within its interval of SFT-1's.

# %%
held_pairs = preference_pairs(builder, eval_items, evasion, recipe.seed, recipe.dpo_evasion_fraction)
held_kinds = [q["kind"] for q in held_pairs]

def pair_logps(model, pairs=held_pairs, masked=True):
    """Summed kept log p of each pair's chosen and rejected answer under ``model`` -> two (P,) tensors."""
    scored = reference_logps(model, pairs, vocab, masked=masked)     # adds ref_chosen / ref_rejected for this model
    return torch.tensor([q["ref_chosen"] for q in scored]), torch.tensor([q["ref_rejected"] for q in scored])

held_lp = {name: pair_logps(m) for name, m in models.items()}
w0, l0 = held_lp["sft1"]
rows = []
for name, (w, l) in held_lp.items():
    loss = -F.logsigmoid(beta * ((w - w0) - (l - l0)))               # the DPO loss, SFT-1 as the reference
    for kind in ("wrong_answer", "evasion", "all"):
        sel = torch.tensor([kind in ("all", k) for k in held_kinds])
        n, right = int(sel.sum()), int((w > l)[sel].sum())
        rows.append(dict(model=name, kind=kind, n=n, chosen=w[sel].mean().item(), rejected=l[sel].mean().item(),
                         margin=(w - l)[sel].mean().item(), right=right, ci=wilson(right, n), loss=loss[sel].mean().item(),
                         chosen_se=(w[sel].std() / n ** 0.5).item() if n > 1 else 0.0,
                         margin_se=((w - l)[sel].std() / n ** 0.5).item() if n > 1 else 0.0))
print(f"{len(held_pairs)} held-out pairs from {len(eval_items)} held-out items: {dict(Counter(held_kinds))}; "
      "log p = summed over the answer's text tokens (the masked reward's tokens)")
print(f"{'model':14s} {'pairs':13s} {'n':>3s} {'log p(chosen)':>13s} {'log p(rejected)':>15s} {'margin':>7s}"
      f" {'ranked right [95 %]':>21s} {'DPO loss':>9s}")
for r in rows:
    print(f"{r['model']:14s} {r['kind']:13s} {r['n']:3d} {r['chosen']:13.2f} {r['rejected']:15.2f} {r['margin']:7.1f}"
          f" {r['right']:3d} = {r['right'] / r['n']:4.0%} [{r['ci'][0]:3.0%}-{r['ci'][1]:3.0%}] {r['loss']:9.4f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
kinds, wdt = ("wrong_answer", "evasion"), 0.2
get = {(r["model"], r["kind"]): r for r in rows}
for j, name in enumerate(held_lp):
    xs = [k + (j - 1.5) * wdt for k in range(len(kinds))]
    for ax, key, se in ((axes[0], "chosen", "chosen_se"), (axes[1], "margin", "margin_se")):
        vals = [get[(name, k)][key] for k in kinds]
        ax.bar(xs, vals, wdt, yerr=[1.96 * get[(name, k)][se] for k in kinds], capsize=2, color=colors[j], label=name)
        for x, v in zip(xs, vals):
            ax.text(x, v, f"{v:.1f}", ha="center", va="top" if key == "chosen" else "bottom", fontsize=7)
n_kind = {k: get[("sft1", k)]["n"] for k in kinds}
for ax in axes[:2]:
    ax.set_xticks(range(len(kinds))); ax.set_xticklabels([f"{k} pairs (n = {n_kind[k]})" for k in kinds])
    ax.axhline(0, color="k", lw=0.8); ax.legend(fontsize=7)
axes[0].set_ylabel("log p(chosen), nats"); axes[0].set_title("the correct answer's own text log p (mean ± 95 %)", fontsize=10)
axes[1].set_yscale("log"); axes[1].set_ylim(1, 3 * max(r["margin"] for r in rows))   # bars start at 1 nat on the log axis
axes[1].set_ylabel("log p(chosen) − log p(rejected), nats")
axes[1].set_title("margin (log axis): evasions are separated from the start", fontsize=10)
for name, ms in metrics.items():                                    # the training log of section 5's live runs
    axes[2].plot([m["step"] for m in ms], [m["reward_chosen"] for m in ms], label=f"live {name}: β r_w (chosen)",
                 color=colors[list(held_lp).index(f"live {name}")])
axes[2].axhline(0, color="k", lw=0.8)
axes[2].set_xlabel("optimizer step"); axes[2].set_ylabel("β (log π − log π_ref)(chosen)")
axes[2].set_title(f"training pairs: the chosen answer's reward, batch mean of n = {batch}", fontsize=10)
axes[2].legend(fontsize=7)
plt.tight_layout(); plt.show()

# %% [markdown]
# All four predictions hold, and together they say what DPO can learn here: **not much, and
# what it does learn costs the correct answer.**
#
# - SFT-1 ranks 54 of the 58 held-out pairs right (93 %, interval 84–97 %): every evasion pair and
#   41 of 45 wrong-answer pairs. The DPO runs rank 52 to 55 of them right: inside that interval, no real gain.
# - The evasion pairs start with a margin of about 220 nats (wrong-answer pairs: 11) and end at a
#   loss of 0.000 to 0.035: after a few steps they give no gradient, and what remains to learn is
#   the wrong-answer pairs SFT-1 still ranks wrong, about one in ten of them (4 of the 45 here).
# - The margin grows for every run (wrong-answer pairs 11 → 12 to 21 nats), and it grows because
#   the rejected answer falls faster than the chosen one, not because the chosen one rises: the
#   correct answer's text log p falls from −1.7 to between −2.1 and −4.0 nats (wrong-answer pairs).
#   The training log shows the same on the training pairs: β r_w, the chosen answer's reward, drifts
#   below 0 in both live runs. The shipped run (60 steps of 16 pairs) displaces most, and it is the
#   one that loses the most text accuracy (58 % → 41 %).
#
# So with pairs whose rejected side SFT-1 already finds unlikely, DPO's cheapest way down is to
# push probability mass *off* the answer tokens altogether. What would make DPO useful here:
# rejected answers drawn from SFT-1's own mistakes (pairs it ranks wrong, so there is something to
# learn), fewer steps or a smaller learning rate (less displacement: Exercise 1; a smaller β is
# not the same thing: Exercise 2), or a term that keeps the chosen answer's likelihood up (a
# negative log-likelihood term on the chosen side, as in iterative RPO, Pang et al. 2024, or the
# DPO-Positive penalty of Smaug). The 5:5:1 merge of notebook 06 gives this DPO stage 1/11 of the weight, which
# is why the answering model survives it.

# %% [markdown]
# ## Summary
#
# Masked DPO scores an answer by the policy/reference log-ratio summed over its **text** tokens
# only: `kept_positions` drops the prompt, the padding and, when masked, every audio id, so the
# audio positions receive exactly zero gradient and the preference is learned through the text
# channel. The hand loop, `masked_dpo_loss` and the training loss function agree; an inverted mask
# does not; at step 0 every pair's loss is ln 2. Trained live from SFT-1, the mask does what the
# paper wants (unmasked DPO moves the audio five to ten times more and loses the most audio-token
# accuracy), but on these toy pairs no DPO run helps the text: SFT-1 already ranks the pairs, the
# evasions are separated from the start, and DPO raises its margins by lowering the correct
# answer's own probability (likelihood displacement), which costs held-out text accuracy.
#
# Next: [06 5:5:1 merge](06_model_merge.ipynb) averages SFT-1, SFT-2 and this masked DPO stage
# 5:5:1, and measures how much of DPO's damage survives 1/11 of the weight.

# %% [markdown]
# ## Exercises
#
# Each solution is collapsed under its exercise; try first. Numbers are for full mode (30 steps, 64
# held-out items); quick mode (`AQAA_QUICK=1`) runs the same code on 6 steps and 16 items.

# %% [markdown]
# ### Exercise 1: a smaller learning rate
#
# Section 6 says DPO's damage comes from the chosen answer losing probability. Train the live
# masked run again with a quarter of the learning rate (5e-5 instead of 2e-4; same 30 steps x 8
# pairs, same β), then measure the final training loss, the held-out chosen answers' mean text
# log p, the held-out pairs ranked right and the generated text accuracy on the 64 items. Use
# `live_run`, `pair_logps` and `score_memoised`. Predict first: more or less text accuracy than
# the live run at 2e-4 (42 %)?
#
# **Expected:** the loss falls less (0.693 → 0.49, against 0.44); the chosen answers' log p barely
# moves (−1.85 → −1.92 nats, against −2.84 at 2e-4); the pairs ranked right stay at 54 of 58; text
# accuracy 55 % (35 of 64), close to SFT-1's 58 % and well above the 42 % at 2e-4. Less movement,
# less displacement, less damage (and, since SFT-1 already ranks the pairs, nothing lost).

# %% tags=["solution"] jupyter={"source_hidden": true}
v_slow, info_slow = live_run(masked=True, lr=recipe.dpo.lr / 4)
slow = v_slow.load_stage("dpo")
w, l = pair_logps(slow)
acc = by_condition(score_memoised(slow, builder, eval_items), eval_items)["all"]
print(f"lr {recipe.dpo.lr / 4:g}: loss {info_slow['losses'][0]:.3f} -> {info_slow['final_loss']:.3f} "
      f"(lr {recipe.dpo.lr:g}: {runs['masked'][1]['final_loss']:.3f})")
print(f"held-out chosen log p {w0.mean():.2f} (SFT-1) -> {w.mean():.2f} (lr {recipe.dpo.lr:g}: {held_lp['live masked'][0].mean():.2f}); "
      f"pairs ranked right {int((w > l).sum())}/{len(w)} (SFT-1 {int((w0 > l0).sum())})")
print(f"text accuracy {acc['text_accuracy']:.0%} of {acc['n']} (SFT-1 {gen_scores['sft1']['all']['text_accuracy']:.0%}, "
      f"lr {recipe.dpo.lr:g}: {gen_scores['live masked']['all']['text_accuracy']:.0%}); "
      f"audio-token accuracy {acc['audio_token_accuracy']:.0%}")

# %% [markdown]
# ### Exercise 2: a smaller β, is it gentler?
#
# β looks like the knob for "how far from the reference": the implicit reward is β times the
# log-ratio. Train the live masked run with β = 0.02 (a fifth of the recipe's 0.1; lr 2e-4, 30
# steps) and measure the same four numbers. Before running, think about two facts: Adam's step
# size is set by the learning rate, not by the size of the gradient; and −log σ(β Δ) only stops
# pulling once the margin Δ is large compared with 1/β.
#
# **Expected:** *not* gentler. The loss ends higher (0.53) because a margin means less at small
# β, and the policy keeps pushing: the chosen answers' log p falls to −6.5 nats (−2.8 at β = 0.1),
# only 49 of 58 pairs stay ranked right (85 %, SFT-1 93 %), and text accuracy drops to 39 % (25 of
# 64), below the 42 % at β = 0.1. (Measured separately, β = 0.5 gave 45 %.) With Adam, the
# learning rate and the number of steps are the gentle knobs; β sets where the loss saturates.

# %% tags=["solution"] jupyter={"source_hidden": true}
v_b, info_b = live_run(masked=True, beta=recipe.dpo_beta / 5)
small_beta = v_b.load_stage("dpo")
w, l = pair_logps(small_beta)
acc = by_condition(score_memoised(small_beta, builder, eval_items), eval_items)["all"]
print(f"beta {recipe.dpo_beta / 5:g}: loss {info_b['losses'][0]:.3f} -> {info_b['final_loss']:.3f} "
      f"(beta {recipe.dpo_beta:g}: {runs['masked'][1]['final_loss']:.3f})")
print(f"held-out chosen log p {w0.mean():.2f} (SFT-1) -> {w.mean():.2f} (beta {recipe.dpo_beta:g}: "
      f"{held_lp['live masked'][0].mean():.2f}); pairs ranked right {int((w > l).sum())}/{len(w)} (SFT-1 {int((w0 > l0).sum())})")
print(f"text accuracy {acc['text_accuracy']:.0%} of {acc['n']} (SFT-1 {gen_scores['sft1']['all']['text_accuracy']:.0%}, "
      f"beta {recipe.dpo_beta:g}: {gen_scores['live masked']['all']['text_accuracy']:.0%}); "
      f"audio-token accuracy {acc['audio_token_accuracy']:.0%}")

# %% [markdown]
# ### Exercise 3: would SFT-1 rank the pairs better with the audio too?
#
# Section 6 ranks pairs by the text log p only (the masked reward's tokens). Rank the same
# held-out pairs by SFT-1's log p of the *whole* answer, text and audio (`pair_logps(reference,
# masked=False)`), and count the pairs ranked right per kind, beside the text-only count.
#
# **Expected:** the evasions stay 13 of 13 (their margin triples, 218 → 659 nats), but the
# wrong-answer pairs get *worse*: 38 of 45 ranked right with the audio, against 41 of 45 on text
# alone. The audio log p mostly measures how long and how predictable each clip is, not whether
# the answer is correct: one more reason to keep the audio out of the reward.

# %% tags=["solution"] jupyter={"source_hidden": true}
w_all, l_all = pair_logps(reference, masked=False)
for kind in ("wrong_answer", "evasion"):
    sel = torch.tensor([k == kind for k in held_kinds])
    print(f"{kind:13s} n={int(sel.sum()):3d}: ranked right on text {int((w0 > l0)[sel].sum()):3d}, "
          f"on text + audio {int((w_all > l_all)[sel].sum()):3d}; mean margin {(w0 - l0)[sel].mean():6.1f} -> "
          f"{(w_all - l_all)[sel].mean():6.1f} nats")
