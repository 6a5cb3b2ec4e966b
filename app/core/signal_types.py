"""One entry per hash type: what it is, how it is computed, how two values compare, which index
table holds it, its default match threshold and its names in the exchange formats.

Adding a hash type means adding a :class:`SignalType` here (and its ``Algorithm`` member in
:mod:`app.core.domain`); the index (:mod:`app.core.hash_index`), the match policy defaults
(:mod:`app.core.match_rules`) and the exchange formats read this table instead of naming
algorithms themselves. The specialised index stays specialised: ``index_table`` says which of
its tables a type lives in (PDQ and video-frame PDQ share one, so a confirmed still matches a
frame of a video and the other way round).

It also holds the vocabulary of signal *variants* (the same algorithm run on a changed picture):
``""`` as decoded, ``"trimmed"`` with letterbox bars removed, ``"dih:<name>"`` rotated or
mirrored (query-only: never stored in the hash list), ``"region:<half>"`` a half picture
(compared only with the same half). See docs/ARCHITECTURE.md, "Hashing and matching".
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.domain import Algorithm

#: Variant of the signals hashed with letterbox/pillarbox bars trimmed (stored in the list).
TRIMMED = "trimmed"
#: Prefix of the variants of rotated/mirrored PDQ hashes (query-only, never in the hash list).
DIHEDRAL_PREFIX = "dih:"
#: Prefix of the variants of half-picture hashes (``region:top`` ...).
REGION_PREFIX = "region:"


def dihedral_variant(name: str) -> str:
    """Signal variant of a rotated/mirrored query hash: ``dih:<name>`` (query-only)."""
    return DIHEDRAL_PREFIX + name


def is_dihedral(variant: str | None) -> bool:
    return bool(variant) and str(variant).startswith(DIHEDRAL_PREFIX)


def region_variant(name: str) -> str:
    return REGION_PREFIX + name


def is_region(variant: str | None) -> bool:
    return bool(variant) and str(variant).startswith(REGION_PREFIX)


def is_query_only(variant: str | None) -> bool:
    """Variants that are computed to search with and never written to the hash list."""
    return is_dihedral(variant)


@dataclass(frozen=True)
class SignalType:
    """One hash type.

    ``bits``: length of the value (hex digits = bits / 4). ``compare``: ``"hamming"`` (a near
    match within a threshold) or ``"exact"``. ``index_table``: the :class:`HashIndex` table.
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
    compare: str
    index_table: str
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
        return self.compare == "hamming"

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
            "hamming",
            "b256",
            31,
            "app.core.pdq (whole picture, trimmed, halves, dihedral)",
            (("pytx", "pdq"), ("tat", "PDQ"), ("vics", "PDQ")),
            min_quality_applies=True,
        ),
        SignalType(
            Algorithm.PDQ_FRAME,
            "video frame PDQ",
            256,
            "hamming",
            "b256",
            31,
            "app.core.video (one sampled frame a second, vPDQ-compatible)",
            (("pytx", "vpdq"), ("tat", "VPDQ"), ("vpdq", "pdq")),
            min_quality_applies=True,
        ),
        SignalType(
            Algorithm.PHASH,
            "pHash",
            64,
            "hamming",
            "b64",
            10,
            "app.core.imaging (imagehash.phash of the grey picture)",
            (("pytx", "phash"), ("tat", "PHASH")),
        ),
        SignalType(
            Algorithm.MD5,
            "MD5",
            128,
            "exact",
            "md5",
            0,
            "app.core.media (MD5 of the file's bytes)",
            (("pytx", "video_md5"), ("pytx", "md5"), ("tat", "MD5"), ("vics", "MD5")),
        ),
        SignalType(
            Algorithm.SHA256,
            "SHA-256",
            256,
            "exact",
            "sha256",
            0,
            "app.core.media (SHA-256 of the file's bytes)",
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
