"""The projections' exceptions."""

from __future__ import annotations


class ProjectionError(Exception):
    """Base class of every error raised by :mod:`projections`."""


class ProjectionConflict(ProjectionError):
    """Another process advanced the view first; the batch is discarded and re-read."""
