"""Synthesis speed as multiples of real time (one process, and N worker processes).

    python benchmarks/bench_synthesis.py [--n 300] [--workers 2]
"""
import argparse
import time

from aqaa_ref.data import synthesize_many
from aqaa_ref.data.styles import number_word
from aqaa_ref.data.tasks import TEMPLATES

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=300)
p.add_argument("--workers", type=int, default=2)
args = p.parse_args()

langs = ("en", "cmn", "yue", "ja")
reqs = []
for i in range(args.n):
    lang = langs[i % 4]
    a, b = i % 10, (i // 10) % 10
    reqs.append(dict(text=TEMPLATES["plus"][lang].format(a=number_word(a, lang), b=number_word(b, lang)),
                     language=lang, voice=["m1", "f2", "m3", "f4"][i % 4], rate=140 + (i % 9) * 10, pitch=30 + (i % 9) * 5))

print(f"synthesizing {args.n} questions (en/cmn/yue/ja, mixed voices, rates, pitches)")
for workers in (1, args.workers):
    t0 = time.perf_counter()
    audio_s = sum(w.size / sr for w, sr, _ in synthesize_many(reqs, workers=workers))
    dt = time.perf_counter() - t0
    print(f"  workers={workers}: {dt:.2f} s wall for {audio_s:.1f} s of audio = {audio_s / dt:.0f}x real time "
          f"({1000 * dt / args.n:.1f} ms per utterance)")
