"""allocator's version (also `allocator.__version__`)."""

__version__ = "0.2.0"
