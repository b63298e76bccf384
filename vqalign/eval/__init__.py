"""Scoring: discrete units against phone labels (:mod:`vqalign.eval.units`) and decoded
speech against the original (:mod:`vqalign.eval.codec_metrics`)."""
