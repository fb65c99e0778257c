"""Notebook 10: from the toy to the 130B model on many GPUs.

Modules: ``planner`` (memory and FLOP planning per GPU, the FSDP dry run on a fake process
group, accelerate launch files), ``launch`` (the toy training run under ``accelerate
launch``: FSDP on CPU processes, the same loop as the toy recipe).
"""
