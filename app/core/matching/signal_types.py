"""The signal types (one :class:`SignalType` per hash: its facts and its behaviour) and the
signal variants (:class:`Variant`).

A type holds everything the rest of the program asks about a hash: its length, how two values
compare (:meth:`SignalType.distance`), its default threshold and which match setting and list
rule set it (:meth:`SignalType.query_threshold`), which variants it is searched with, which
index table holds it (``index_table``: PDQ and video-frame PDQ share one, so a confirmed still
matches a frame and back), whether it may be indexed (:meth:`SignalType.indexable`: PDQ's
quality floor), whether it is a video's frame list (``video_frames``: the video rule, frame
counts, the exchange formats' frame lists) and its names in the exchange formats. The index
(:mod:`app.core.matching.hash_index`), the match rules (:mod:`app.core.matching.match_rules`)
and the exchange formats (:mod:`app.core.exchange`) ask the type; none names an algorithm.
Adding a hash type is adding a :class:`SignalType` to :data:`SIGNAL_TYPES` here (with its
``Algorithm`` member in :mod:`app.core.model.domain`) and its tests.

A *variant* is the same algorithm run on a changed picture, stored as a short string (the
database and the exports hold it; at most 16 characters) and read once into a
:class:`Variant`: ``""`` as decoded, ``"trimmed"`` with letterbox bars removed,
``"region:<half>"`` a half picture (compared only with the same half), ``"untrimmed:<half>"``
a half of a barred picture as decoded (query-only), and turned or mirrored (query-only, never
in the hash list): ``"dih:<name>"`` the picture as decoded, ``"dih:<code>:trimmed"`` the
trimmed picture, ``"dih:<code>:<half>"`` a half (looked up in the half it lands on). The
sound's fingerprint read as if the copy were played at another speed: ``"speed:<percent>"``
(query-only, :data:`app.core.audio.fingerprint.SPEEDS`). A view of the picture, found by its
geometry (the picture inside a border, a band, an inset, a filmed screen) or with a cut margin
put back: ``"view:<name>"`` (query-only, looked up as a whole picture). See
docs/ARCHITECTURE.md, "Hashing and matching".
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Protocol, cast

from app.core.model.domain import Algorithm

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
#: Prefix of the views of a picture (query-only): a part of it found by its geometry, or the
#: picture with a margin put back (``view:border``, ``view:pip``, ``view:pad4`` ...:
#: :mod:`app.core.hashing.views`).
VIEW_PREFIX = "view:"
#: Prefix of the hashes of a picture's centre, cut by a few percent per side (``zoom:6``: 6 %
#: off each side; :mod:`app.core.hashing.views`, :data:`~app.core.hashing.views.ZOOM_LEVELS`).
#: Stored with the item and written to the hash list at a confirm, never searched with: a copy
#: cropped or zoomed in by about that much (its ``view:pad*`` and ``view:border`` queries too)
#: finds them. Local: the exports leave variants out.
ZOOM_PREFIX = "zoom:"
#: Prefix of the sound's fingerprint read at another speed (``speed:125``: the copy played
#: 1.25 times faster; query-only).
SPEED_PREFIX = "speed:"


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


#: The kinds of variant (:attr:`Variant.kind`): the picture as decoded, bars trimmed, a half of
#: the (trimmed) picture, a half of a barred picture as decoded, the sound read at a speed, a
#: view of the picture.
PLAIN, REGION, UNTRIMMED, SPEED, VIEW, ZOOM = "", "region", "untrimmed", "speed", "view", "zoom"
_KINDS = (PLAIN, TRIMMED, REGION, UNTRIMMED, SPEED, VIEW, ZOOM)


@dataclass(frozen=True, slots=True)
class Variant:
    """A signal variant read from its stored string once (:meth:`parse`; ``str()`` writes the
    same string back). ``kind``: :data:`PLAIN` (``""``), :data:`TRIMMED`, :data:`REGION` or
    :data:`UNTRIMMED`; ``half``: ``top``, ``bottom``, ``left`` or ``right`` for the last two;
    ``turn``: the dihedral transform (:data:`app.core.hashing.pdq.DIHEDRAL_ORDER`'s names)
    applied to that picture, or None; ``speed``: for :data:`SPEED`, the speed in percent the
    sound was read at (10 to 999); ``view``: for :data:`VIEW`, the view's name (lowercase
    letters and digits, at most 11 characters); ``zoom``: for :data:`ZOOM`, the percent cut
    off each side of the picture (1 to 40)."""

    kind: str = PLAIN
    half: str | None = None
    turn: str | None = None
    speed: int | None = None
    view: str | None = None
    zoom: int | None = None

    def __post_init__(self) -> None:
        if (self.zoom is not None) != (self.kind == ZOOM):
            raise ValueError(f"variant {self.kind!r}: zoom {self.zoom!r}")
        if self.zoom is not None and (not 1 <= self.zoom <= 40 or self.turn is not None):
            raise ValueError(f"variant zoom {self.zoom!r} is not valid")
        if (self.view is not None) != (self.kind == VIEW):
            raise ValueError(f"variant {self.kind!r}: view {self.view!r}")
        if self.view is not None and not (
            self.view.isascii()
            and self.view.isalnum()
            and self.view == self.view.lower()
            and len(VIEW_PREFIX) + len(self.view) <= 16
            and self.turn is None
        ):
            raise ValueError(f"variant view {self.view!r} is not valid")
        if (self.speed is not None) != (self.kind == SPEED):
            raise ValueError(f"variant {self.kind!r}: speed {self.speed!r}")
        if self.speed is not None and (not 10 <= self.speed <= 999 or self.turn is not None):
            raise ValueError(f"variant speed {self.speed!r} is not valid")
        if self.kind not in _KINDS:
            raise ValueError(f"unknown variant kind {self.kind!r}")
        if (self.half is not None) != (self.kind in (REGION, UNTRIMMED)):
            raise ValueError(f"variant {self.kind!r}: half {self.half!r}")
        if self.turn is not None and (self.kind == UNTRIMMED or not self.turn):
            raise ValueError(f"variant {self.kind!r} cannot be turned ({self.turn!r})")
        if self.turn is not None and self.kind != PLAIN and self.turn not in DIHEDRAL_CODES:
            raise ValueError(f"unknown dihedral transform {self.turn!r}")

    @classmethod
    def parse(cls, variant: str | None) -> Variant:
        """The variant a stored string names (None reads as ``""``). ValueError for a string
        no Hashdesk writes."""
        return _parse(variant or "")

    def __str__(self) -> str:
        if self.kind == SPEED:
            return f"{SPEED_PREFIX}{self.speed}"
        if self.kind == VIEW:
            return f"{VIEW_PREFIX}{self.view}"
        if self.kind == ZOOM:
            return f"{ZOOM_PREFIX}{self.zoom}"
        if self.turn is None:
            if self.kind in (PLAIN, TRIMMED):
                return self.kind
            return f"{self.kind}:{self.half}"
        if self.kind == PLAIN:
            return DIHEDRAL_PREFIX + self.turn
        base = TRIMMED if self.kind == TRIMMED else self.half
        return f"{DIHEDRAL_PREFIX}{DIHEDRAL_CODES[self.turn]}:{base}"

    @property
    def query_only(self) -> bool:
        """Computed to search with, never written to the hash list: turned or mirrored
        pictures and halves, the halves of a barred picture as decoded, the sound read at
        another speed, the views."""
        return self.turn is not None or self.kind in (UNTRIMMED, SPEED, VIEW)

    @property
    def whole(self) -> bool:
        """A whole picture (as decoded or trimmed, turned or not), not a half."""
        return self.half is None

    @property
    def stored_space(self) -> str:
        """The index space a stored signal of this variant goes in: its half's
        (``region:<half>``), or ``""`` (the root) for a whole picture."""
        return str(self) if self.kind == REGION and self.turn is None else ""

    @property
    def query_space(self) -> str | None:
        """The index space a half is looked up in: its own half's; for a half turned or
        mirrored (the transform applied to the query's half), the half the transform moves it
        to (the left half of a mirrored copy, mirrored back, is the original's right half).
        None for a whole picture."""
        if self.half is None:
            return None
        half = self.half if self.turn is None else HALF_AFTER[self.turn][self.half]
        return REGION_PREFIX + half


@functools.lru_cache(maxsize=1024)
def _parse(variant: str) -> Variant:
    if variant in (PLAIN, TRIMMED):
        return Variant(variant)
    prefix, sep, rest = variant.partition(":")
    if sep and rest:
        if prefix + ":" == REGION_PREFIX:
            return Variant(REGION, half=rest)
        if prefix + ":" == UNTRIMMED_HALF_PREFIX:
            return Variant(UNTRIMMED, half=rest)
        if prefix + ":" == SPEED_PREFIX and rest.isdigit() and rest[0] != "0":
            return Variant(SPEED, speed=int(rest))
        if prefix + ":" == VIEW_PREFIX:
            return Variant(VIEW, view=rest)
        if prefix + ":" == ZOOM_PREFIX and rest.isdigit() and rest[0] != "0":
            return Variant(ZOOM, zoom=int(rest))
        if prefix + ":" == DIHEDRAL_PREFIX:
            code, sep2, base = rest.partition(":")
            if not sep2:
                return Variant(PLAIN, turn=rest)
            name = _DIHEDRAL_NAMES.get(code)
            if name is not None and base == TRIMMED:
                return Variant(TRIMMED, turn=name)
            if name is not None and base:
                return Variant(REGION, half=base, turn=name)
    raise ValueError(f"not a signal variant: {variant!r}")


def dihedral_variant(name: str, of: str = "") -> str:
    """Signal variant of a rotated/mirrored query hash (query-only): ``dih:<name>`` of the
    picture as decoded; ``dih:<code>:trimmed`` of the picture with its bars trimmed (``of`` =
    :data:`TRIMMED`); ``dih:<code>:<half>`` of one half (``of`` = ``region:<half>``)."""
    base = Variant.parse(of)
    return str(Variant(base.kind, base.half, name))


def dihedral_parts(variant: str) -> tuple[str, str]:
    """``(transform name, of)`` of a dihedral variant: ``of`` is "" (the picture as decoded),
    :data:`TRIMMED` or ``region:<half>`` (see :func:`dihedral_variant`)."""
    v = Variant.parse(variant)
    if v.turn is None:
        raise ValueError(f"not a turned variant: {variant!r}")
    return v.turn, str(Variant(v.kind, v.half))


def is_dihedral(variant: str | None) -> bool:
    return bool(variant) and Variant.parse(variant).turn is not None


def region_variant(name: str) -> str:
    return str(Variant(REGION, half=name))


def is_region(variant: str | None) -> bool:
    """A stored half (``region:<half>``, not turned)."""
    return bool(variant) and Variant.parse(variant).stored_space != ""


def untrimmed_half_variant(half: str) -> str:
    """Variant of the query-only hash of one half (``top`` ...) of a picture as decoded."""
    return str(Variant(UNTRIMMED, half=half))


def is_untrimmed_half(variant: str | None) -> bool:
    return bool(variant) and Variant.parse(variant).kind == UNTRIMMED


def half_query_space(variant: str | None) -> str | None:
    """:attr:`Variant.query_space` of a stored string."""
    return Variant.parse(variant).query_space


def speed_variant(percent: int) -> str:
    """Variant of the sound's fingerprint read as a copy played ``percent`` / 100 times
    faster (query-only)."""
    return str(Variant(SPEED, speed=percent))


def view_variant(name: str) -> str:
    """Variant of the query-only hash of a view of the picture (``view:<name>``)."""
    return str(Variant(VIEW, view=name))


def zoom_variant(percent: int) -> str:
    """Variant of the stored hash of a picture's centre, ``percent`` % cut off each side."""
    return str(Variant(ZOOM, zoom=percent))


def is_view(variant: str | None) -> bool:
    return bool(variant) and Variant.parse(variant).kind == VIEW


def is_query_only(variant: str | None) -> bool:
    """Variants that are computed to search with and never written to the hash list."""
    return Variant.parse(variant).query_only


class _Policy(Protocol):
    """What a type reads of the match settings (``match_rules.MatchPolicy``)."""

    @property
    def min_quality(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class SignalType:
    """One hash type, constructed by keyword.

    Facts: ``algorithm`` (its stored name), ``label``, ``bits`` (hex digits = bits / 4),
    ``computed_by`` (for readers), ``index_table`` (the :class:`HashIndex` table that holds it;
    types of one table must have the same bits), ``exchange_names``: how the exchange formats
    call it, by format (``pytx``: python-threatexchange's signal type names; ``tat``: Tech
    Against Terrorism's ``algorithm``; ``vics``: the VICS 2.0 field; ``vpdq``: the vPDQ
    reference's frame lists). A format may name a type more than once: the first name is the one
    written, every one is read.

    Behaviour: ``near`` (compared by Hamming distance within a threshold) or exact (equal or
    not); ``default_threshold``; ``threshold_setting``: the match setting that holds its
    threshold (a :class:`MatchPolicy` field; "" for ``default_threshold``); ``list_threshold``:
    whether a list's own threshold (``ListRule.pdq_threshold``) replaces it for that list's
    entries; ``query_kinds``: which whole-picture variant kinds (:attr:`Variant.kind`) it is
    searched with; ``turned_tighter``: how many bits tighter a turned or mirrored query is
    held; ``halves``: whether its halves are searched (in their own spaces) when nothing whole
    matched; ``on_video``: whether it is searched for a video at all; ``video_frames``: one hash
    per sampled frame of a video, matched by the video rule and exchanged as the video's frame
    list; ``aligned``: a stretch of a sound's fingerprint, matched as a sequence by its bit
    error rate at the best alignment (:mod:`app.core.matching.audio_match`; its threshold is
    in thousandths of a bit error rate, not in bits); ``min_quality_applies``: whether the
    quality floor (PDQ's own metric) applies; ``clusters``: whether it joins near-duplicates
    in the open queue (the sound does not: the team server checks a cluster's claim pair by
    pair, and a sound has hundreds of blocks).
    """

    algorithm: Algorithm
    label: str
    bits: int
    index_table: str
    computed_by: str
    near: bool
    default_threshold: int = 0
    threshold_setting: str = ""
    list_threshold: bool = False
    query_kinds: frozenset[str] = frozenset({PLAIN})
    turned_tighter: int = 0
    halves: bool = False
    on_video: bool = True
    video_frames: bool = False
    aligned: bool = False
    clusters: bool = True
    min_quality_applies: bool = False
    exchange_names: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.bits <= 0 or self.bits % 4 or (self.near and self.bits % 64):
            raise ValueError(f"{self.algorithm}: {self.bits} bits")
        if not self.near and (self.default_threshold or self.threshold_setting):
            raise ValueError(f"{self.algorithm}: an exact type has no threshold")
        if not set(self.query_kinds) <= {PLAIN, TRIMMED, SPEED, VIEW}:
            raise ValueError(f"{self.algorithm}: query kinds {sorted(self.query_kinds)}")

    @property
    def name(self) -> str:
        return str(self.algorithm)

    @property
    def hex_len(self) -> int:
        return self.bits // 4

    @property
    def compare(self) -> str:
        return "hamming" if self.near else "exact"

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

    def threshold(self, policy: object) -> int:
        """The largest distance that matches under ``policy`` (0 for an exact type)."""
        if not self.threshold_setting:
            return self.default_threshold
        return int(getattr(policy, self.threshold_setting))

    def list_override(self, list_threshold: int | None) -> dict[str, int]:
        """The match settings a list's own threshold replaces for this type (none when the list
        has none or it does not apply to this type)."""
        if list_threshold is None or not self.list_threshold or not self.threshold_setting:
            return {}
        return {self.threshold_setting: list_threshold}

    def query_threshold(self, policy: object, variant: Variant, video: bool) -> int | None:
        """The distance within which a query hash of this type and ``variant`` matches (0: equal),
        or None when such a hash is not searched with (``video``: the item is a video)."""
        if not self.near:
            return 0
        if video and not self.on_video:
            return None
        if variant.half is not None:
            return self.threshold(policy) if self.halves else None
        if self.aligned:
            plain = variant.kind in self.query_kinds and variant.turn is None
            return self.threshold(policy) if plain else None
        if variant.kind not in self.query_kinds:
            return None
        t = self.threshold(policy)
        return t - self.turned_tighter if variant.turn is not None else t

    def trusted(self, quality: int | None, policy: _Policy) -> bool:
        """Whether a hash of this quality may match (the quality floor, where it applies)."""
        return not (
            self.min_quality_applies and quality is not None and quality < policy.min_quality
        )

    def indexable(self, variant: str, quality: int | None, policy: _Policy) -> bool:
        """Whether a stored hash may match at all: not query-only, not of too low quality."""
        return not Variant.parse(variant).query_only and self.trusted(quality, policy)


SIGNAL_TYPES: dict[Algorithm, SignalType] = {}


def signal_type(algorithm: Algorithm | str) -> SignalType:
    """The type of an algorithm (by member or stored name)."""
    t = SIGNAL_TYPES.get(cast(Algorithm, algorithm))  # "pdq" finds Algorithm.PDQ (a StrEnum)
    if t is None:
        raise ValueError(f"unknown hash algorithm {algorithm!r}")
    return t


def by_exchange_name(fmt: str, name: str) -> SignalType | None:
    """The type a format calls ``name`` (case-insensitive), or None when Hashdesk has none."""
    for t in SIGNAL_TYPES.values():
        if t.reads_as(fmt, name):
            return t
    return None


def register(t: SignalType) -> SignalType:
    """Add a type to the registry (ValueError when its algorithm or an exchange name is taken)."""
    if t.algorithm in SIGNAL_TYPES:
        raise ValueError(f"signal type {t.name!r} is registered already")
    for fmt, name in t.exchange_names:
        other = by_exchange_name(fmt, name)
        if other is not None:
            raise ValueError(f"{fmt} name {name!r} is {other.name}'s already")
    SIGNAL_TYPES[t.algorithm] = t
    return t


def unregister(algorithm: Algorithm | str) -> None:
    """Take a type out of the registry (tests)."""
    SIGNAL_TYPES.pop(signal_type(algorithm).algorithm)


_WHOLE = frozenset({PLAIN, TRIMMED, VIEW})

_PDQ = SignalType(
    algorithm=Algorithm.PDQ,
    label="PDQ",
    bits=256,
    index_table="b256",
    computed_by="app.core.hashing.pdq (whole picture, trimmed, halves, dihedral, views)",
    near=True,
    default_threshold=31,
    threshold_setting="pdq_threshold",
    list_threshold=True,
    query_kinds=_WHOLE,
    halves=True,
    min_quality_applies=True,
    exchange_names=(("pytx", "pdq"), ("tat", "PDQ"), ("vics", "PDQ")),
)
register(_PDQ)
# A video frame's PDQ is PDQ itself, one per sampled frame: the same table, threshold and
# rules, matched by the video rule and exchanged as the video's frame list.
register(
    dataclasses.replace(
        _PDQ,
        algorithm=Algorithm.PDQ_FRAME,
        label="video frame PDQ",
        computed_by="app.core.video.frames (one sampled frame a second, vPDQ-compatible)",
        video_frames=True,
        exchange_names=(("pytx", "vpdq"), ("tat", "VPDQ"), ("vpdq", "pdq")),
    )
)
register(
    SignalType(
        algorithm=Algorithm.PHASH,
        label="pHash",
        bits=64,
        index_table="b64",
        computed_by="app.core.hashing.imaging (imagehash.phash of the grey picture)",
        near=True,
        default_threshold=10,
        threshold_setting="phash_threshold",
        # An item asks 8 pHashes instead of 1: the 7 turned ones are held 2 bits tighter (see
        # MatchPolicy.turned_phash_threshold). Not the trimmed picture; off for video.
        query_kinds=frozenset({PLAIN}),
        turned_tighter=2,
        on_video=False,
        exchange_names=(("pytx", "phash"), ("tat", "PHASH")),
    )
)
register(
    SignalType(
        algorithm=Algorithm.MD5,
        label="MD5",
        bits=128,
        index_table="md5",
        computed_by="app.core.ingest.media (MD5 of the file's bytes)",
        near=False,
        exchange_names=(("pytx", "video_md5"), ("pytx", "md5"), ("tat", "MD5"), ("vics", "MD5")),
    )
)
register(
    SignalType(
        algorithm=Algorithm.SHA256,
        label="SHA-256",
        bits=256,
        index_table="sha256",
        computed_by="app.core.ingest.media (SHA-256 of the file's bytes)",
        near=False,
        # python-threatexchange names file SHA-256 ``video_sha256`` (VideoSHA256Signal).
        exchange_names=(
            ("pytx", "video_sha256"),
            ("pytx", "sha256"),
            ("tat", "SHA256"),
            ("vics", "SHA256"),
        ),
    )
)
# The sound's fingerprint: Haitsma-Kalker sub-fingerprints in blocks of 256 bits (the block's
# first sub-fingerprint's number, then 7 sub-fingerprints: app.core.audio.signals), matched as a
# sequence by its bit error rate at the best alignment. Local only: no exchange format carries
# sound, so it has no exchange name and the exports leave it out, saying so.
register(
    SignalType(
        algorithm=Algorithm.AUDIO,
        label="sound",
        bits=256,
        index_table="audio",
        computed_by="app.core.audio (Haitsma-Kalker sub-fingerprints, 43 a second)",
        near=True,
        # thousandths of a bit error rate (measured: docs/PERFORMANCE.md, "Audio")
        default_threshold=300,
        threshold_setting="audio_ber",
        query_kinds=frozenset({PLAIN, SPEED}),
        aligned=True,
        clusters=False,
    )
)
