"""The package's version, in a module that imports nothing, so that any floor can read it
without importing the package ``__init__`` (which reaches up to ``embed`` and ``training``)."""

__version__ = "0.1.0"
