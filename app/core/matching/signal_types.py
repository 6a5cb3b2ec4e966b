"""One entry per hash type: what it is, how it is computed, how two values compare, which index
table holds it, its default match threshold and its names in the exchange formats.

Adding a hash type means adding a :class:`SignalType` here (and its ``Algorithm`` member in
:mod:`app.core.model.domain`); the index (:mod:`app.core.matching.hash_index`), the match policy
defaults
(:mod:`app.core.matching.match_rules`) and the exchange formats read this table instead of naming
algorithms themselves. The specialised index stays specialised: ``index_table`` says which of
its tables a type lives in (PDQ and video-frame PDQ share one, so a confirmed still matches a
frame of a video and the other way round).

It also holds the vocabulary of signal *variants* (the same algorithm run on a changed picture):
``""`` as decoded, ``"trimmed"`` with letterbox bars removed, ``"dih:<name>"`` rotated or
mirrored (query-only: never stored in the hash list; ``"dih:<code>:trimmed"`` and
``"dih:<code>:<half>"`` the trimmed picture or a half rotated or mirrored), ``"region:<half>"``
a half picture (compared only with the same half, or a turned half with the half it lands
on), ``"untrimmed:<half>"`` a half of a barred picture as decoded (query-only). See
docs/ARCHITECTURE.md, "Hashing and matching".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.core.model.domain import Algorithm


class Comparison(StrEnum):
    """How two values of a type compare."""

    HAMMING = "hamming"  # a near match: the number of differing bits, within a threshold
    EXACT = "exact"  # equal or not


class IndexTable(StrEnum):
    """The :class:`~app.core.matching.hash_index.HashIndex` tables: bit tables by width
    (near types), exact tables by hash."""

    B256 = "b256"
    B64 = "b64"
    MD5 = "md5"
    SHA256 = "sha256"


#: Variant of the signals hashed with letterbox/pillarbox bars trimmed (stored in the list).
TRIMMED = "trimmed"
#: Prefix of the variants of rotated/mirrored PDQ hashes (query-only, never in the hash list).
DIHEDRAL_PREFIX = "dih:"
#: Prefix of the variants of half-picture hashes (``region:top`` ...).
REGION_PREFIX = "region:"
#: Prefix of the halves of a picture as decoded, when its bars were trimmed (query-only: the
#: halves stored are the trimmed picture's). A strip laid over an edge of a picture (a news
#: ticker, a caption) is trimmed as a bar would be; the halves it leaves alone are found
#: through these (``untrimmed:top`` ...).
UNTRIMMED_HALF_PREFIX = "untrimmed:"


#: Short names of the dihedral transforms (:data:`app.core.hashing.pdq.DIHEDRAL_ORDER`) in the
#: variants
#: of a trimmed picture or a half turned or mirrored: the variant column holds 16 characters.
DIHEDRAL_CODES: dict[str, str] = {
    "original": "o",
    "rotate90": "r90",
    "rotate180": "r180",
    "rotate270": "r270",
    "flipx": "fx",
    "flipy": "fy",
    "flip_plus1": "fp1",
    "flip_minus1": "fm1",
}
_DIHEDRAL_NAMES = {code: name for name, code in DIHEDRAL_CODES.items()}

#: Where each half of a picture lands after each dihedral transform (numpy terms, as in
#: :data:`app.core.hashing.pdq.DIHEDRAL_ORDER`: rotate90 is ``np.rot90`` counter-clockwise, flipx
#: upside
#: down, flipy mirrored left-right, flip_plus1 the transpose).
HALF_AFTER: dict[str, dict[str, str]] = {
    "original": {"top": "top", "bottom": "bottom", "left": "left", "right": "right"},
    "rotate90": {"top": "left", "left": "bottom", "bottom": "right", "right": "top"},
    "rotate180": {"top": "bottom", "bottom": "top", "left": "right", "right": "left"},
    "rotate270": {"top": "right", "right": "bottom", "bottom": "left", "left": "top"},
    "flipx": {"top": "bottom", "bottom": "top", "left": "left", "right": "right"},
    "flipy": {"top": "top", "bottom": "bottom", "left": "right", "right": "left"},
    "flip_plus1": {"top": "left", "left": "top", "bottom": "right", "right": "bottom"},
    "flip_minus1": {"top": "right", "right": "top", "bottom": "left", "left": "bottom"},
}


def dihedral_variant(name: str, of: str = "") -> str:
    """Signal variant of a rotated/mirrored query hash (query-only): ``dih:<name>`` of the
    picture as decoded; ``dih:<code>:trimmed`` of the picture with its bars trimmed (``of`` =
    :data:`TRIMMED`); ``dih:<code>:<half>`` of one half (``of`` = ``region:<half>``)."""
    if not of:
        return DIHEDRAL_PREFIX + name
    base = of[len(REGION_PREFIX) :] if of.startswith(REGION_PREFIX) else of
    return f"{DIHEDRAL_PREFIX}{DIHEDRAL_CODES[name]}:{base}"


def dihedral_parts(variant: str) -> tuple[str, str]:
    """``(transform name, of)`` of a dihedral variant: ``of`` is "" (the picture as decoded),
    :data:`TRIMMED` or ``region:<half>`` (see :func:`dihedral_variant`)."""
    rest = variant[len(DIHEDRAL_PREFIX) :]
    code, sep, base = rest.partition(":")
    if not sep:
        return rest, ""
    return _DIHEDRAL_NAMES[code], (base if base == TRIMMED else REGION_PREFIX + base)


def is_dihedral(variant: str | None) -> bool:
    return bool(variant) and str(variant).startswith(DIHEDRAL_PREFIX)


def region_variant(name: str) -> str:
    return REGION_PREFIX + name


def is_region(variant: str | None) -> bool:
    return bool(variant) and str(variant).startswith(REGION_PREFIX)


def untrimmed_half_variant(half: str) -> str:
    """Variant of the query-only hash of one half (``top`` ...) of a picture as decoded."""
    return UNTRIMMED_HALF_PREFIX + half


def is_untrimmed_half(variant: str | None) -> bool:
    return bool(variant) and str(variant).startswith(UNTRIMMED_HALF_PREFIX)


def half_query_space(variant: str | None) -> str | None:
    """The index space a half's hash is looked up in: its own half's for ``region:<half>``;
    for a half turned or mirrored (``dih:<code>:<half>``, the transform applied to the query's
    half), the half the transform moves it to (the left half of a mirrored copy, mirrored back,
    is the original's right half). None for a whole-picture variant."""
    if is_region(variant):
        return str(variant)
    if is_untrimmed_half(variant):
        return REGION_PREFIX + str(variant)[len(UNTRIMMED_HALF_PREFIX) :]
    if not is_dihedral(variant):
        return None
    name, of = dihedral_parts(str(variant))
    if not of.startswith(REGION_PREFIX):
        return None
    return REGION_PREFIX + HALF_AFTER[name][of[len(REGION_PREFIX) :]]


def is_query_only(variant: str | None) -> bool:
    """Variants that are computed to search with and never written to the hash list."""
    return is_dihedral(variant) or is_untrimmed_half(variant)


@dataclass(frozen=True)
class SignalType:
    """One hash type.

    ``bits``: length of the value (hex digits = bits / 4). ``compare``: a :class:`Comparison`
    (Hamming within a threshold, or exact). ``index_table``: the :class:`HashIndex` table.
    ``default_threshold``: the largest Hamming distance that matches by default (0 for exact).
    ``computed_by``: the function that computes it, for readers. ``exchange_names``: how the
    exchange formats call it, by format (``pytx``: python-threatexchange's signal type names;
    ``tat``: Tech Against Terrorism's ``algorithm``; ``vics``: the VICS 2.0 field; ``vpdq``:
    the vPDQ reference's frame lists). A format may name a type more than once: the first name
    is the one written, every one is read. ``min_quality_applies``: whether the quality gate
    (PDQ's own metric) applies.
    """

    algorithm: Algorithm
    label: str
    bits: int
    compare: Comparison
    index_table: IndexTable
    default_threshold: int
    computed_by: str
    exchange_names: tuple[tuple[str, str], ...] = ()
    min_quality_applies: bool = False

    @property
    def name(self) -> str:
        return self.algorithm.value

    @property
    def hex_len(self) -> int:
        return self.bits // 4

    @property
    def near(self) -> bool:
        return self.compare is Comparison.HAMMING

    def exchange_name(self, fmt: str) -> str | None:
        """The name ``fmt`` writes for this type, or None when the format cannot carry it."""
        return next((n for f, n in self.exchange_names if f == fmt), None)

    def reads_as(self, fmt: str, name: str) -> bool:
        wanted = name.strip().lower()
        return any(f == fmt and n.lower() == wanted for f, n in self.exchange_names)

    def distance(self, a: str, b: str) -> int:
        """Hamming distance for near types; 0 or ``bits`` (equal or not) for exact ones."""
        if len(a) != len(b):
            raise ValueError(f"{self.name} values differ in length: {len(a)} vs {len(b)}")
        if self.near:
            return (int(a, 16) ^ int(b, 16)).bit_count()
        return 0 if a.lower() == b.lower() else self.bits


SIGNAL_TYPES: dict[Algorithm, SignalType] = {
    t.algorithm: t
    for t in (
        SignalType(
            Algorithm.PDQ,
            "PDQ",
            256,
            Comparison.HAMMING,
            IndexTable.B256,
            31,
            "app.core.hashing.pdq (whole picture, trimmed, halves, dihedral)",
            (("pytx", "pdq"), ("tat", "PDQ"), ("vics", "PDQ")),
            min_quality_applies=True,
        ),
        SignalType(
            Algorithm.PDQ_FRAME,
            "video frame PDQ",
            256,
            Comparison.HAMMING,
            IndexTable.B256,
            31,
            "app.core.video.analysis (one sampled frame a second, vPDQ-compatible)",
            (("pytx", "vpdq"), ("tat", "VPDQ"), ("vpdq", "pdq")),
            min_quality_applies=True,
        ),
        SignalType(
            Algorithm.PHASH,
            "pHash",
            64,
            Comparison.HAMMING,
            IndexTable.B64,
            10,
            "app.core.hashing.imaging (imagehash.phash of the grey picture)",
            (("pytx", "phash"), ("tat", "PHASH")),
        ),
        SignalType(
            Algorithm.MD5,
            "MD5",
            128,
            Comparison.EXACT,
            IndexTable.MD5,
            0,
            "app.core.ingest.media (MD5 of the file's bytes)",
            (("pytx", "video_md5"), ("pytx", "md5"), ("tat", "MD5"), ("vics", "MD5")),
        ),
        SignalType(
            Algorithm.SHA256,
            "SHA-256",
            256,
            Comparison.EXACT,
            IndexTable.SHA256,
            0,
            "app.core.ingest.media (SHA-256 of the file's bytes)",
            # python-threatexchange names file SHA-256 ``video_sha256`` (VideoSHA256Signal).
            (("pytx", "video_sha256"), ("pytx", "sha256"), ("tat", "SHA256"), ("vics", "SHA256")),
        ),
    )
}


def signal_type(algorithm: Algorithm | str) -> SignalType:
    try:
        return SIGNAL_TYPES[Algorithm(algorithm)]
    except ValueError:
        raise ValueError(f"unknown hash algorithm {algorithm!r}") from None


def by_exchange_name(fmt: str, name: str) -> SignalType | None:
    """The type a format calls ``name`` (case-insensitive), or None when Hashdesk has none."""
    for t in SIGNAL_TYPES.values():
        if t.reads_as(fmt, name):
            return t
    return None
