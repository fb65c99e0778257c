"""Measure the dual-codebook tokenizer: rates, PER, probes, codebook usage, speed, streaming.

    .venv/bin/python benchmarks/bench_tokenizer.py            # the toy preset (trains once, then cached)
    .venv/bin/python benchmarks/bench_tokenizer.py --quick    # tiny configs on the tiny corpus (CI smoke run)

Prints every number the issue asks for; ``--json PATH`` also writes them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aqaa_ref.data import CorpusConfig, build_corpus  # noqa: E402
from aqaa_ref.tokenizer import CHUNK_SAMPLES, DualConfig, load_or_train_dual, training_log  # noqa: E402
from aqaa_ref.threads import torch_threads  # noqa: E402
from aqaa_ref.tokenizer.probes import codebook_usage, collect, format_table, per_by_voice, probe_table  # noqa: E402


def rates(tok) -> list[dict]:
    """Token counts vs 16.67 / 25 per second for many lengths (random noise clips)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for sec in (0.05, 0.1, 0.119, 0.12, 0.25, 0.5, 0.77, 1.0, 1.5, 2.345, 3.0, 5.0, 7.5, 10.0, 30.0):
        x = torch.randn(int(sec * 16_000), generator=g) * 0.1
        l, s = tok.encode(x, 16_000)
        rows.append(dict(seconds=sec, linguistic=len(l), expected_l=sec * 50 / 3, semantic=len(s), expected_s=sec * 25,
                         interleaved=len(tok.interleave(l, s))))
    return rows


def speed(tok, corpus, threads: int) -> dict:
    """Encode every distinct clip of the corpus (audio already in memory); x real time."""
    clips = [r for split in ("train", "val", "test") for _, r in corpus.utterances(split)]
    t = time.time()
    wavs = [corpus.load(r, sample_rate=16_000) for r in clips]
    load_s = time.time() - t
    audio_s = sum(w.numel() for w in wavs) / 16_000
    with torch_threads(threads):
        t = time.time()
        tok.encode_batch(wavs, 16_000)
        enc_s = time.time() - t
    return dict(threads=threads, clips=len(wavs), audio_seconds=audio_s, load_seconds=load_s,
                encode_seconds=enc_s, x_real_time=audio_s / enc_s)


def streaming(tok, corpus, n: int = 100) -> dict:
    """Encode test clips in 240 ms chunks and compare with offline encoding, token by token."""
    same = total = clips_equal = 0
    utts = corpus.utterances("test")[:n]
    for _, r in utts:
        x = tok.prepare(corpus.load(r, sample_rate=16_000))
        l, s = tok.encode(x)
        st = tok.stream()
        parts = [st.push(x[i:i + CHUNK_SAMPLES]) for i in range(0, x.numel(), CHUNK_SAMPLES)] + [st.flush()]
        ls, ss = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        ok = len(ls) == len(l) and len(ss) == len(s)
        same += int((ls == l).sum() + (ss == s).sum()) if ok else 0
        total += len(l) + len(s)
        clips_equal += int(ok and torch.equal(ls, l) and torch.equal(ss, s))
    return dict(clips=len(utts), token_agreement=same / max(1, total), clips_identical=clips_equal)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny configs on the tiny corpus")
    ap.add_argument("--probe-train", type=int, default=1500, help="training clips for the probes")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args()
    preset = "tiny" if args.quick else "toy"
    corpus = build_corpus(CorpusConfig.from_preset(preset, workers=1 if args.quick else 2))
    cfg = DualConfig.from_preset(preset)
    t = time.time()
    tok = load_or_train_dual(corpus, cfg)
    res: dict = dict(preset=preset, tokenizer=repr(tok), load_or_train_seconds=time.time() - t,
                     cpu_threads=torch.get_num_threads(), load_average=os.getloadavg())
    log = training_log(corpus, cfg) or {}
    res["train_seconds"] = {k: v for k, v in log.items() if k.endswith("_seconds")}
    res["params"] = {"linguistic": sum(p.numel() for p in tok.linguistic.parameters()),
                     "semantic_encoder": sum(p.numel() for n, p in tok.semantic.named_parameters()
                                             if n.startswith(("proj", "encoder", "to_code"))),
                     "semantic_total": sum(p.numel() for p in tok.semantic.parameters())}
    print(tok)
    print("params:", res["params"], "| training seconds:", {k: round(v, 1) for k, v in res["train_seconds"].items()})

    res["rates"] = rates(tok)
    print("\n== token counts (floor(T/960), floor(T/640)) vs 16.67 and 25 per second ==")
    for r in res["rates"]:
        print(f"{r['seconds']:7.3f} s  linguistic {r['linguistic']:4d} (x16.67 = {r['expected_l']:7.2f})  "
              f"semantic {r['semantic']:4d} (x25 = {r['expected_s']:7.2f})  interleaved {r['interleaved']}")

    t = time.time()
    test = collect(tok, corpus, "test")
    train = collect(tok, corpus, "train", limit=args.probe_train)
    res["collect_seconds"] = time.time() - t
    res["per"] = per_by_voice(test)
    print("\n== CTC phoneme error rate (test split, greedy) ==")
    for k, v in res["per"].items():
        print(f"{k:<20} {v['clips']:4d} clips  PER {100 * v['per']:.2f}%")

    res["usage_test"] = codebook_usage(test, tok)
    res["usage_train"] = codebook_usage(train, tok)
    print("\n== codebook usage (used fraction, perplexity) ==")
    for split in ("train", "test"):
        for stream, u in res[f"usage_{split}"].items():
            print(f"{split:<6}{stream:<12} {u['used']:5d}/{u['codes']} used ({100 * u['used_fraction']:.1f}%), "
                  f"perplexity {u['perplexity']:.1f}")

    t = time.time()
    res["probes"] = probe_table(train, test, tok)
    res["probe_seconds"] = time.time() - t
    print(f"\n== linear probes, test accuracy ({len(train)} training clips; windows +-2 linguistic, +-3 semantic) ==")
    print(format_table(res["probes"]))

    res["streaming"] = streaming(tok, corpus)
    print("\n== streaming (240 ms chunks) vs offline ==")
    print(res["streaming"])

    res["speed"] = [speed(tok, corpus, n) for n in (1, 2)]
    print("\n== encoding speed (whole corpus, audio in memory; machine shared: load average "
          f"{os.getloadavg()[0]:.1f}) ==")
    for s in res["speed"]:
        print(f"{s['threads']} thread(s): {s['audio_seconds'] / 60:.1f} min of audio in {s['encode_seconds']:.1f} s "
              f"= {s['x_real_time']:.0f}x real time (reading the files: {s['load_seconds']:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
