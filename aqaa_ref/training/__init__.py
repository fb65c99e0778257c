"""Notebooks 04-06: pre-training, two-stage SFT, audio-token-masked DPO, the 5:5:1 merge.

Modules: ``sequences`` (corpus items -> every stage's token sequences and loss masks),
``loop`` (the one training loop on accelerate: schedule, checkpoints, resume), ``dpo``
(the masked DPO loss and its pair collation), ``merge`` (weighted checkpoint merging),
``recipe`` (the stage chain, each stage cached by its config).
"""
