"""Agreement between two reviewers of the same items: percent agreement and Cohen's kappa.

Kappa corrects percent agreement for the agreement two raters would reach by chance given how
often each uses each label: kappa = (p_o - p_e) / (1 - p_e).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Agreement:
    pairs: int
    agreed: int
    percent: float | None  # 0..100, None without pairs
    kappa: float | None  # None when undefined (no pairs, or chance agreement is certain)

    def describe(self) -> str:
        if not self.pairs:
            return "no second reviews"
        kappa = "—" if self.kappa is None else f"{self.kappa:.2f}"
        return f"{self.percent:.1f}% of {self.pairs} (κ {kappa})"


def percent_agreement(pairs: Iterable[tuple[Hashable, Hashable]]) -> float | None:
    pairs = list(pairs)
    if not pairs:
        return None
    return 100.0 * sum(1 for a, b in pairs if a == b) / len(pairs)


def cohen_kappa(pairs: Iterable[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa for two raters over the same items. None when it is undefined: no pairs,
    or both raters always used one and the same label (chance agreement is then 1)."""
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    p_o = sum(1 for a, b in pairs if a == b) / n
    p_e = sum(first[label] * second[label] for label in first.keys() | second.keys()) / (n * n)
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def agreement(pairs: Iterable[tuple[Hashable, Hashable]]) -> Agreement:
    pairs = list(pairs)
    return Agreement(
        pairs=len(pairs),
        agreed=sum(1 for a, b in pairs if a == b),
        percent=percent_agreement(pairs),
        kappa=cohen_kappa(pairs),
    )
