"""Notebook 09: judging spoken answers, and the paper's ablations at toy scale.

Modules: ``recognizer`` (an independent phoneme recognizer trained on ground-truth speech:
the judge), the toy StepEval in ``judges`` (the recognizer with voice and language classifiers,
trained on ground truth) and ``scoring`` (per-dimension scores of one answer from its audio,
tables over many; the radar plot is :func:`aqaa_ref.viz.radar_plot`), ``ablations`` (output
format, concatenation, codebooks, DPO mask, merge).
"""
