"""Exceptions of the detection core."""


class DetectorError(Exception):
    """Base class of every error the core raises on purpose."""


class ConfigError(DetectorError, ValueError):
    """A setting or threshold is missing, of the wrong type, or impossible."""
