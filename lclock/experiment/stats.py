"""Mean and 95% confidence interval across trials, with Student's t.

Why t and not 1.96: an experiment has about 5 trials, and with n = 5 the normal
approximation makes the interval 30% too narrow. scipy is not a dependency, so the
two-sided 97.5% quantiles for up to 30 degrees of freedom are tabulated here (beyond that
the normal quantile is within 2%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# t_{0.975, df} for df = 1..30 (standard tables; e.g. df=4 -> 2.776).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_T975_LARGE = ((40, 2.021), (60, 2.000), (120, 1.980))
_Z975 = 1.960


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError("need at least 1 degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    for limit, q in _T975_LARGE:
        if df <= limit:
            return q
    return _Z975


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """``{"n", "mean", "sd", "lo", "hi", "half"}``: the mean and its 95% interval.

    With one value the interval is undefined (None); with no value everything is None.
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "lo": None, "hi": None, "half": None}
    mean = math.fsum(xs) / n
    if n == 1:
        return {"n": 1, "mean": mean, "sd": None, "lo": None, "hi": None, "half": None}
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half, "half": half}


def fmt_ci(ci: dict[str, Any], digits: int = 2) -> str:
    """``4.20 ± 0.31`` (or just the mean with one trial, ``–`` with none)."""
    if ci.get("mean") is None:
        return "–"
    if ci.get("half") is None:
        return _fixed(ci["mean"], digits)
    return f"{_fixed(ci['mean'], digits)} ± {_fixed(ci['half'], digits)}"


def _fixed(x: float, digits: int) -> str:
    """Fixed-point, without the sign of a value that rounds to zero (no "-0.00")."""
    text = f"{x:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text
