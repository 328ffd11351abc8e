"""Acme Messaging for wamsg: ``wamsg.Client("acme", token=...)``."""

from .adapter import AcmeAdapter

__all__ = ["AcmeAdapter"]
