"""lclock: a scale model of a small asynchronous distributed system with logical clocks."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
