"""The HTTP API (``/v1``) and the app factory."""

from .app import create_app

__all__ = ["create_app"]
