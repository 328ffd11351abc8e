"""The installed version of wamsg."""

__version__ = "0.1.0.dev0"
