"""The installed distribution's version (one place, read from the package metadata)."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("genesis_ps")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
