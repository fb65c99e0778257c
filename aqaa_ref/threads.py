"""Thread pinning: run a block of torch work on a given number of intra-op threads."""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def torch_threads(n: int):
    """Temporarily use ``n`` intra-op threads, then restore the previous count. Many small
    ops (one clip at a time, tiny test models) run several times faster on one thread than
    on two when the cores are shared: idle OpenMP threads spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
