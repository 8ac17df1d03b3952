"""How a probability is written for people: never a certainty the draws cannot give.

A probability estimated from posterior draws or simulated trials that rounds to 0 or 1 at the
precision shown is not 0 or 1: "P(gain) 1.00" claims a certainty that 4,000 draws cannot give.
:func:`probability` writes such a value as ``"< 0.01"`` or ``"> 0.99"`` (at two decimals; ``"<
0.001"`` / ``"> 0.999"`` at three). The report, the demo and the power command's text use it.
"""

from __future__ import annotations

import math
from typing import Any

#: Written for a missing or non-finite value.
MISSING = "–"


def probability(value: Any, digits: int = 2) -> str:
    """``value`` to ``digits`` decimals, or ``"< 0.01"`` / ``"> 0.99"`` when it would round to 0 or 1.

    The rule is applied to the rounded text, so it is exactly "what would be shown": at two
    decimals 0.004 is ``"< 0.01"``, 0.005 is ``"0.01"``, 0.995 is ``"0.99"`` (the float just below
    it rounds down), 0.996 is ``"> 0.99"``; exact 0 and 1 are ``"< 0.01"`` and ``"> 0.99"`` too.

    Parameters
    ----------
    value
        A probability (anything ``float`` takes); missing or non-finite values give ``"–"``.
    digits
        Decimals shown (at least 1).

    Returns
    -------
    str
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(v):
        return MISSING
    digits = max(int(digits), 1)
    text = f"{v:.{digits}f}"
    step = f"{10.0 ** -digits:.{digits}f}"
    if float(text) <= 0.0:
        return f"< {step}"
    if float(text) >= 1.0:
        return f"> {1.0 - 10.0 ** -digits:.{digits}f}"
    return text


def probability_interval(low: Any, high: Any, digits: int = 2) -> str:
    """An interval of probabilities, ``"0.12–0.48"``; with a bound written as ``< 0.01`` it reads ``"< 0.01 to 0.03"``."""
    lo, hi = probability(low, digits), probability(high, digits)
    joiner = " to " if ("<" in lo + hi or ">" in lo + hi) else "–"
    return f"{lo}{joiner}{hi}"


__all__ = ["probability", "probability_interval"]
