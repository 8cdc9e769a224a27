"""saltext-kubesalt: Salt's side of kubesalt, thin adapters over its binaries."""

__version__ = "0.1.0"
