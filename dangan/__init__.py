"""The kernel every part of dangan may import: errors, settings and the version.

Nothing else lives here; this package is a floor, not a parent.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
