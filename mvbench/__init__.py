"""mvbench: a plugin-based benchmark suite for deep multi-view clustering."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mvbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
