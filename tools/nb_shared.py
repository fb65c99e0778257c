"""Cell sources shared by the training notebooks (04, 05, 06): written into each notebook
by tools/make_nb0X.py, so every notebook stays self-contained (it imports only aqaa_ref)."""

# the token strip: ids coloured by kind, bool rows drawn as mask bars
STRIPS = r'''from matplotlib.patches import Rectangle

sp, vocab, tok, builder = assets.builder.special, assets.vocab, assets.tok, assets.builder
COLORS = {"text": "#4C72B0", "linguistic": "#DD8452", "semantic": "#55A868", "marker": "#222222", "special": "#8172B3"}
MARK = {True: "#111111", False: "#DDDDDD"}
SHORT = {sp.audio_start: "as", sp.audio_end: "ae", sp.bos: "s", sp.eot: "EOT", sp.bot: "BOT", sp.pad: "pad"}

def token_kind(t):
    if t in (sp.audio_start, sp.audio_end): return "marker"
    if t in (sp.bos, sp.eot, sp.bot, sp.pad, sp.unk): return "special"
    if vocab.is_linguistic(t): return "linguistic"
    if vocab.is_semantic(t): return "semantic"
    return "text"

def draw_strips(rows, title, show_ids=None, mark_names=("learned / kept", "masked / dropped")):
    """rows: [(label, values)]. A list of ids is drawn coloured by kind; a list of bools as a
    thin mask bar (black = True, light grey = False) under the row above it."""
    width = max(len(v) for _, v in rows)
    show_ids = width <= 100 if show_ids is None else show_ids
    fig, ax = plt.subplots(figsize=(min(22, 0.17 * width + 3), 0.45 * len(rows) + 1.3))
    y, ticks = 0.0, []
    for label, vals in rows:
        vals = list(vals)
        is_mask = all(isinstance(v, bool) for v in vals)
        h = 0.4 if is_mask else 0.9
        for c, v in enumerate(vals):
            ax.add_patch(Rectangle((c, y - h), 0.92, h, color=MARK[v] if is_mask else COLORS[token_kind(v)], lw=0))
            if show_ids and not is_mask:
                ax.text(c + 0.46, y - h / 2, SHORT.get(v, str(v)), ha="center", va="center", fontsize=4.5,
                        color="white", rotation=90)
        ticks.append((y - h / 2, label))
        y -= h + 0.15
    ax.set_xlim(0, width); ax.set_ylim(y, 0.1)
    ax.set_yticks([t for t, _ in ticks]); ax.set_yticklabels([l for _, l in ticks], fontsize=8)
    ax.set_xlabel("position"); ax.set_title(title, fontsize=10)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in [*COLORS.values(), MARK[True], MARK[False]]]
    ax.legend(handles, [*COLORS, *mark_names], fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    plt.tight_layout(); plt.show()

def pretty(ids, max_text=60):
    """Ids as one readable line: text runs decoded, audio runs collapsed to counts."""
    out, run, audio = [], [], []
    def flush():
        if run: out.append(repr(decode_text(tok, run))[:max_text]); run.clear()
        if audio:
            n_l = sum(1 for a in audio if vocab.is_linguistic(a))
            out.append(f"<{len(audio)} audio: {n_l} L + {len(audio) - n_l} S>"); audio.clear()
    for t in ids:
        k = token_kind(t)
        if k == "text":
            if audio: flush()
            run.append(t)
        elif k in ("linguistic", "semantic"):
            if run: flush()
            audio.append(t)
        else:
            flush(); out.append("[" + SHORT.get(t, str(t)) + "]")
    flush()
    return " ".join(out)'''

# a fixed, stratified held-out subset and the scoring evaluate_stages uses
EVAL = r'''import hashlib
from aqaa_ref.cache import cache_dir, atomic_write_json
from aqaa_ref.generate import AnswerScore

def eval_subset(n):
    """Every k-th test item (the test split is ordered by family, then condition): a fixed subset
    that covers every family and condition."""
    test = assets.corpus.split("test")
    return test[::max(1, len(test) // n)][:n]

def weights_key(model):
    """A hash of the weights: the same model gives the same key in every notebook."""
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode()); h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]

def score(model, items, memo=True):
    """Greedy constrained answers, scored as in evaluate_stages (text accuracy, audio-token accuracy).
    Generation is the slow part on CPU, so scores are memoised on disk by (weights, items): notebooks
    04-06 generate each model's answers once."""
    key = hashlib.sha1((weights_key(model) + builder.fmt.name + ",".join(it.id for it in items)).encode()).hexdigest()[:20]
    path = cache_dir() / "notebook_scores" / f"{key}.json"
    if memo and path.exists():
        return [AnswerScore(**d) for d in json.loads(path.read_text())]
    scores = score_answers(builder, items, answer_items(model, builder, items))
    atomic_write_json(path, [dataclasses.asdict(s) for s in scores])
    return scores

def by_condition(scores, items):
    res = {"all": summarize(scores)}
    for cond in sorted({it.condition for it in items}):
        res[cond] = summarize([s for s, it in zip(scores, items) if it.condition == cond])
    return res'''
