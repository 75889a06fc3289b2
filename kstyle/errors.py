"""Typed errors raised by the library; only the CLI turns them into messages."""


class KstyleError(Exception):
    """Base class of every error kstyle raises on purpose."""


class RecipeError(KstyleError, ValueError):
    """A recipe file or an override is invalid; the message names file and key."""


class DataError(KstyleError, ValueError):
    """A data source is missing, empty, or holds an image that cannot be used."""


class ModelLoadError(KstyleError, ValueError):
    """A run folder or model file cannot be loaded."""


class StyleOptionError(KstyleError, ValueError):
    """A style transfer option is out of range (steps, init, blend weights, a layer)."""


class ExportError(KstyleError, ValueError):
    """An export failed: conversion, or its check against the Keras model."""


class TrainingDivergedError(KstyleError, ArithmeticError):
    """A training loss became NaN or infinite; the message names the step and the last
    good checkpoint."""


class WorkerLostError(KstyleError):
    """A worker of a multi-worker run stopped answering (killed, crashed, its host gone);
    the others cannot go on without it. The command exits with :attr:`exit_code`
    (sysexits' EX_TEMPFAIL: try again); every worker resumes from the last checkpoint."""

    exit_code = 75
