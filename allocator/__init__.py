"""allocator: optimal allocation of work-safety technical services to enterprises."""

__version__ = "0.1.0"
