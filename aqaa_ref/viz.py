"""Pictures the notebooks share: token timelines, token strips with masks, spectrograms, the
toy StepEval's radar plot. matplotlib is imported lazily.

    >>> token_timeline(answer.ids, aqaa.vocab, aqaa.special)          # one coloured cell per id
    >>> draw_strips([("ids", ex["input_ids"]), ("  labels", [l != -100 for l in ex["labels"]])],
    ...             "an SFT example", vocab, special)                 # ids, and a learned/masked bar under them
    >>> pretty(ex["input_ids"], tok, vocab, special)                  # one line, audio runs as counts
    "[s] [BOT] 'system\\nanswer in speech' [EOT] [BOT] 'human\\n' [as] <65 audio: 26 L + 39 S> [ae] ..."
    >>> spectrogram(answer.wav, ax=ax, title="answer")
    >>> radar_plot({"sft": res, "dpo": res2}, "correct")              # EvalResults of aqaa_ref.evaluation.scoring
"""
from __future__ import annotations

import math

import torch

COLORS = {"text": "#4C72B0", "linguistic": "#DD8452", "semantic": "#55A868", "marker": "#222222",
          "special": "#8172B3"}
MASK_COLORS = {True: "#111111", False: "#DDDDDD"}      # a bool row: black = True, light grey = False


def display_kind(t: int, vocab, special) -> str:
    """One id -> "text" | "linguistic" | "semantic" | "marker" (audio start/end) | "special"."""
    if t in (special.audio_start, special.audio_end):
        return "marker"
    if t in special.all():
        return "special"
    if vocab.is_linguistic(torch.tensor(t)):
        return "linguistic"
    if vocab.is_semantic(torch.tensor(t)):
        return "semantic"
    return "text"


def short_name(t: int, special) -> str:
    """A few letters for a special id ("as", "ae", "s", "EOT", "BOT", "pad"); other ids as their number."""
    names = {special.audio_start: "as", special.audio_end: "ae", special.bos: "s", special.eot: "EOT",
             special.bot: "BOT", special.pad: "pad"}
    return names.get(t, str(t))


def token_timeline(ids, vocab, special, ax=None, title: str = "answer tokens", per_row: int = 100):
    """Draw ids as coloured cells, ``per_row`` per line (text / linguistic / semantic / markers).

    Returns the matplotlib axis."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ids = list(ids)
    rows = max(1, -(-len(ids) // per_row))
    if ax is None:
        _, ax = plt.subplots(figsize=(min(16, 0.14 * min(len(ids), per_row) + 2), 0.5 * rows + 1.0))
    for k, t in enumerate(ids):
        r, c = divmod(k, per_row)
        ax.add_patch(Rectangle((c, -r - 0.9), 0.9, 0.8, color=COLORS[display_kind(t, vocab, special)], lw=0))
    ax.set_xlim(0, min(len(ids), per_row) or 1)
    ax.set_ylim(-rows - 0.1, 0.1)
    ax.set_yticks([-r - 0.5 for r in range(rows)])
    ax.set_yticklabels([f"{r * per_row}" for r in range(rows)], fontsize=7)
    ax.set_xlabel("position in the row")
    ax.set_title(title, fontsize=10)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    ax.legend(handles, list(COLORS), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax


def draw_strips(rows, title: str, vocab, special, show_ids: bool | None = None,
                mark_names: tuple[str, str] = ("learned / kept", "masked / dropped"), ax=None):
    """Draw aligned rows of one patch per position: ids coloured by kind, bools as mask bars.

    rows: [(label, values)]. A row of ids (ints) is drawn full height, coloured by
    :func:`display_kind`; a row of bools is drawn as a thin bar (black = True, grey = False),
    so put a mask right under the ids it masks. ``show_ids`` writes each id (or its short
    name) on its patch; by default only when the widest row has at most 100 positions.
    ``mark_names`` label the two bar colours in the legend. Returns the matplotlib axis."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    width = max(len(v) for _, v in rows)
    show_ids = width <= 100 if show_ids is None else show_ids
    if ax is None:
        _, ax = plt.subplots(figsize=(min(22, 0.17 * width + 3), 0.45 * len(rows) + 1.3))
    y, ticks = 0.0, []                                # y: top of the next row (rows go downwards)
    for label, vals in rows:
        vals = list(vals)
        is_mask = all(isinstance(v, bool) for v in vals)
        h = 0.4 if is_mask else 0.9                   # a mask is a thin bar under its row
        for c, v in enumerate(vals):
            color = MASK_COLORS[v] if is_mask else COLORS[display_kind(v, vocab, special)]
            ax.add_patch(Rectangle((c, y - h), 0.92, h, color=color, lw=0))
            if show_ids and not is_mask:
                ax.text(c + 0.46, y - h / 2, short_name(v, special), ha="center", va="center", fontsize=4.5,
                        color="white", rotation=90)
        ticks.append((y - h / 2, label))
        y -= h + 0.15
    ax.set_xlim(0, width)
    ax.set_ylim(y, 0.1)
    ax.set_yticks([t for t, _ in ticks])
    ax.set_yticklabels([label for _, label in ticks], fontsize=8)
    ax.set_xlabel("position")
    ax.set_title(title, fontsize=10)
    any_mask = any(all(isinstance(v, bool) for v in vals) for _, vals in rows)
    colors, names = [*COLORS.values()], [*COLORS]
    if any_mask:                                       # the bar colours only when a mask is drawn
        colors, names = colors + [MASK_COLORS[True], MASK_COLORS[False]], names + [*mark_names]
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in colors]
    ax.legend(handles, names, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.figure.tight_layout()
    return ax


def pretty(ids, tok, vocab, special, max_text: int = 60) -> str:
    """Ids as one readable line: text runs decoded (repr, cut at ``max_text`` characters), audio
    runs collapsed to ``<N audio: L + S>`` (linguistic + semantic counts), specials in brackets.

    For example <s>, <|BOT|>, the text "assistant\\n", <as>, one LLSSS group, <ae>, <|EOT|> reads
    ``[s] [BOT] 'assistant\\n' [as] <5 audio: 2 L + 3 S> [ae] [EOT]``.
    """
    from aqaa_ref.formats.text_tokenizer import decode_text

    out, text, audio = [], [], []

    def flush():                                      # close the open text or audio run
        if text:
            out.append(repr(decode_text(tok, text))[:max_text])
            text.clear()
        if audio:
            n_l = sum(1 for a in audio if vocab.is_linguistic(a))
            out.append(f"<{len(audio)} audio: {n_l} L + {len(audio) - n_l} S>")
            audio.clear()

    for t in ids:
        kind = display_kind(t, vocab, special)
        if kind == "text":
            if audio:
                flush()
            text.append(t)
        elif kind in ("linguistic", "semantic"):
            if text:
                flush()
            audio.append(t)
        else:                                         # a marker or a special id
            flush()
            out.append(f"[{short_name(t, special)}]")
    flush()
    return " ".join(out)


def spectrogram(wav: torch.Tensor, ax=None, title: str = "", sample_rate: int = 16_000):
    """Log-mel spectrogram of (T,) audio, seconds on the x axis. Returns the axis."""
    import matplotlib.pyplot as plt

    from aqaa_ref.vocoder import mel_frames

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.2))
    mel = mel_frames(wav.float()) if wav.numel() else torch.zeros(80, 1)
    ax.imshow(mel.numpy(), origin="lower", aspect="auto", vmin=-11, vmax=2,
              extent=(0, max(wav.numel(), 160) / sample_rate, 0, mel.shape[0]))
    ax.set_xlabel("seconds")
    ax.set_ylabel("mel bin")
    ax.set_title(title, fontsize=10)
    return ax


def radar_plot(results, dimension: str | None = "correct", ax=None):
    """StepEval-style radar: one axis per family showing ``dimension`` (or, with dimension=None,
    one axis per [0, 1] dimension over all answers), one polygon per model. -> the polar axis.
    ``results``: {model name: :class:`aqaa_ref.evaluation.scoring.EvalResult`}, or one EvalResult."""
    import matplotlib.pyplot as plt

    from aqaa_ref.evaluation.scoring import RADAR_DIMENSIONS

    results = results if isinstance(results, dict) else {"model": results}
    first = next(iter(results.values())).summary()
    labels = [g for g in first if g != "all"] if dimension else list(RADAR_DIMENSIONS)
    angles = [2 * math.pi * k / len(labels) for k in range(len(labels))]
    if ax is None:
        ax = plt.figure(figsize=(6, 6)).add_subplot(projection="polar")
    for name, res in results.items():
        summ = res.summary()
        vals = [summ.get(g, {}).get(dimension, math.nan) for g in labels] if dimension else [summ["all"][d] for d in labels]
        vals = [0.0 if math.isnan(v) else v for v in vals]
        ax.plot(angles + angles[:1], vals + vals[:1], label=name)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.15)
    ax.set_xticks(angles)
    ax.set_xticklabels([g.replace("_", "\n") for g in labels], fontsize=8)
    ax.set_ylim(0, 1 if dimension in (None, *RADAR_DIMENSIONS) else None)
    ax.set_title(f"toy StepEval: {dimension or 'dimensions'}")
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    return ax


def waterfall_plot(rows, by: str = "condition", ax=None):
    """Where answers are lost: per group, one bar per stage of the chain (the share that
    survives every stage so far), and the reference ceilings as ticks. ``rows``:
    :func:`aqaa_ref.evaluation.waterfall.waterfall`'s. -> the axis."""
    import matplotlib.pyplot as plt

    from aqaa_ref.evaluation.waterfall import CEILINGS, STAGES, summarize

    table = summarize(rows, by)
    groups = list(table)
    if ax is None:
        ax = plt.figure(figsize=(1.6 * len(groups) + 2, 3.5)).add_subplot()
    width = 0.8 / len(STAGES)
    for k, stage in enumerate(STAGES):
        xs = [g + (k - (len(STAGES) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [table[g][stage] for g in groups], width, label=stage.replace("_", " "))
    markers = dict(ref_tokens="v", ref_vocoded="o", copy_synthesis="s", ref_audio="^")
    for c in CEILINGS:
        ax.scatter(range(len(groups)), [table[g][c] for g in groups], marker=markers.get(c, "x"),
                   color="black", zorder=3, s=18, label=f"ceiling: {c.replace('_', ' ')}")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{g.replace('_', chr(10))}\n(n={table[g]['n']})" for g in groups], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of answers")
    ax.set_title(f"where the spoken answers are lost, by {by}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


#: one colour per part of the system, the same in every notebook's roadmap
PART_COLORS = {"data": "#937860", "tokenizer": COLORS["linguistic"], "backbone": COLORS["text"],
               "training": "#4C9BB0", "vocoder": COLORS["semantic"], "inference": "#8172B3",
               "evaluation": "#C44E52", "scale": "#777777"}


def roadmap(current: int, ax=None):
    """The course as a row of eleven boxes, one per notebook, with notebook ``current`` marked:
    done ones faded, this one filled and outlined, the rest open. Returns the axis."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    from aqaa_ref.course import LESSONS, lesson

    lesson(current)                                    # a one-line error for a bad number
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 1.35))
    w, gap = 1.0, 0.18
    for les in LESSONS:
        x = les.number * (w + gap)
        color = PART_COLORS[les.part]
        here = les.number == current
        alpha = 1.0 if here else (0.35 if les.number < current else 0.12)
        ax.add_patch(FancyBboxPatch((x, 0), w, 1, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=color, alpha=alpha, edgecolor="black" if here else color,
                                    lw=2.2 if here else 0.8))
        ax.text(x + w / 2, 0.5, f"{les.number:02d}\n{les.box}", ha="center", va="center", fontsize=7.2,
                color="white" if here else "black", fontweight="bold" if here else "normal")
        if les.number:
            ax.annotate("", (x - 0.01, 0.5), (x - gap + 0.01, 0.5), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.set_xlim(-0.1, len(LESSONS) * (w + gap))
    ax.set_ylim(-0.1, 1.1)
    ax.axis("off")
    ax.set_title(f"the course: you are at {current:02d}, {lesson(current).title}", fontsize=9, loc="left")
    return ax
