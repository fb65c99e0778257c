"""Notebook 09: judging spoken answers, and the paper's ablations at toy scale.

Modules: ``recognizer`` (an independent phoneme recognizer trained on ground-truth speech:
the judge), ``stepeval`` (the toy StepEval: judges, per-dimension scores from the answer
audio, radar plot), ``ablations`` (output format, concatenation, codebooks, DPO mask, merge).
"""
