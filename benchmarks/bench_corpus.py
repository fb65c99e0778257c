"""Corpus build time from an empty cache (default: the toy preset on 2 worker processes).

    python benchmarks/bench_corpus.py [--preset toy] [--workers 2]
"""
import argparse
import tempfile
import time
from pathlib import Path

from aqaa_ref.data import CorpusConfig, build_corpus

p = argparse.ArgumentParser()
p.add_argument("--preset", default="toy")
p.add_argument("--workers", type=int, default=2)
args = p.parse_args()

cfg = CorpusConfig.from_preset(args.preset, workers=args.workers)
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    corpus = build_corpus(cfg, root=Path(tmp) / "corpus", progress=False)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_corpus(cfg, root=Path(tmp) / "corpus", progress=False)
    reload = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in (Path(tmp) / "corpus").rglob("*") if f.is_file())
s = corpus.stats()
print(f"preset={args.preset} workers={args.workers}: {s['items']} items, {s['clips']} clips, "
      f"{s['audio_hours']:.2f} h of audio, {size / 1e6:.0f} MB on disk")
print(f"  build from empty cache: {build:.1f} s ({s['audio_hours'] * 3600 / build:.0f}x real time)")
print(f"  reuse (manifest read):  {reload:.2f} s")
