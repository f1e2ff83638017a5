"""lclock: a scale model of a small asynchronous distributed system with logical clocks."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1

# The Python API (SPEC 13), imported on first use: `import lclock` stays fast and the
# command line never imports pandas.
_API = ("load", "simulate", "Run")


def __getattr__(name: str) -> object:
    if name in _API:
        from lclock import api

        return getattr(api, name)
    raise AttributeError(f"module 'lclock' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
