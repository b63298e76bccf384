"""Verb modules that run work across floors (a verb that drives the pipeline's schedulers
cannot live in the floor it feeds). Each exposes ``add_arguments(parser)`` and
``run(args) -> int`` for :mod:`vqalign.cli`.
"""
