"""The one registry of review actions: id, label, default keys. Menus, the decision bar buttons
and the cheat sheet all read it; a settings override replaces an action's keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from app.core.model.taxonomy import Taxonomy


@dataclass(frozen=True)
class ActionSpec:
    id: str
    label: str
    keys: tuple[str, ...]
    group: str  # "decide", "view", "help"
    decision: bool = False  # records a decision: guarded against repeats


REVIEW_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("confirm", "Confirm (violating)", ("Y",), "decide", decision=True),
    ActionSpec("reject", "Reject (not violating)", ("N",), "decide", decision=True),
    ActionSpec("skip", "Skip", ("S",), "decide", decision=True),
    ActionSpec("escalate", "Escalate to a lead", ("E",), "decide", decision=True),
    ActionSpec("undo", "Undo last decision", ("U", "Ctrl+Z"), "decide", decision=True),
    ActionSpec("greyscale", "Greyscale", ("G",), "view"),
    ActionSpec("blur", "Blur strength", ("B",), "view"),
    ActionSpec("keep_comfort", "Keep greyscale and blur as my defaults", ("Ctrl+Shift+G",), "view"),
    ActionSpec("prev_frame", "Previous frame", ("Left",), "view"),
    ActionSpec("next_frame", "Next frame", ("Right",), "view"),
    ActionSpec("back_ten", "Ten frames back", ("Shift+Left",), "view"),
    ActionSpec("forward_ten", "Ten frames on", ("Shift+Right",), "view"),
    ActionSpec("prev_member", "Previous cluster member", ("PgUp",), "view"),
    ActionSpec("next_member", "Next cluster member", ("PgDown",), "view"),
    ActionSpec("note", "Write a note", ("Ctrl+N",), "view"),
    ActionSpec("cheatsheet", "Keyboard cheat sheet", ("?",), "help"),
)

# Pairs of keys that belong on one row of the cheat sheet (each other's opposite or step);
# every other action has a row of its own.
RELATED_KEYS: tuple[tuple[str, str], ...] = (
    ("confirm", "reject"),
    ("skip", "escalate"),
    ("greyscale", "blur"),
    ("prev_frame", "next_frame"),
    ("back_ten", "forward_ten"),
    ("prev_member", "next_member"),
)

# What a decision key does on a queue other than the moderators' (where it differs): on the
# leads' escalation queue a skip leaves the item with the leads, and E passes it on to
# another lead with a note instead of escalating it to where it already is.
QUEUE_LABELS: dict[str, dict[str, str]] = {
    "escalations": {
        "skip": "Skip (stays with the leads)",
        "escalate": "Pass to another lead",
    },
}

# On a moderator's review window: the blind second-review queue, in a window of its own.
QUEUE_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("queue_second_review", "Second review queue (blind)", ("Ctrl+Shift+S",), "queue"),
)

# The shared workstation: every window a person works in has them (menu "Session").
SESSION_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("my_exposure", "My exposure, last 14 days", ("Ctrl+Shift+M",), "session"),
    ActionSpec("lock", "Lock the screen now", ("Ctrl+L",), "session"),
    ActionSpec(
        "sign_out", "Sign out (gives your claimed items back)", ("Ctrl+Shift+Q",), "session"
    ),
    ActionSpec("quit", "Quit", ("Ctrl+Q",), "session"),
)

# Shown in the cheat sheet; handled as press/release on the window, not as an action.
HOLD_KEYS: tuple[tuple[str, str], ...] = (
    ("Space (hold)", "Reveal unblurred while held"),
    ("Shift (hold) + mouse", "Unblur a small circle under the pointer"),
)

# The lead's workspace: the history view, the statistics view and the window around them.
HISTORY_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("history_find", "Filter by text", ("Ctrl+F",), "history"),
    ActionSpec("history_table", "Back to the table", ("Ctrl+T",), "history"),
    ActionSpec("history_clear", "Clear filters", ("Ctrl+L",), "history"),
    ActionSpec("history_refresh", "Reload from the newest", ("F5",), "history"),
    ActionSpec("history_item", "Only this item's decisions", ("I",), "history"),
    ActionSpec("history_overturn", "Overturn the selected decision", ("O",), "history"),
    ActionSpec("history_export", "Export the filtered history (CSV)", ("Ctrl+E",), "history"),
    ActionSpec("history_blur", "Blur strength", ("B",), "history"),
    ActionSpec("history_greyscale", "Greyscale", ("G",), "history"),
)
STATS_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("stats_refresh", "Recompute the statistics", ("Ctrl+R",), "stats"),
    ActionSpec("stats_export", "Export the period summary (HTML + CSV)", ("Ctrl+S",), "stats"),
)
LISTS_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("lists_find", "Search entries (hash prefix, label)", ("Ctrl+K",), "lists"),
    ActionSpec("lists_refresh", "Reload the lists", ("Shift+F5",), "lists"),
    ActionSpec("lists_disable", "Disable the selected entries", ("Ctrl+D",), "lists"),
    ActionSpec("lists_enable", "Enable the selected entries", ("Ctrl+Shift+D",), "lists"),
    ActionSpec(
        "lists_clear_guard", "Clear the flood guard of the selected entry", ("Ctrl+G",), "lists"
    ),
    ActionSpec("lists_import", "Import a list from a file", ("Ctrl+I",), "lists"),
    ActionSpec("lists_export", "Export the selected list", ("Ctrl+Shift+X",), "lists"),
)
LEAD_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("lead_history", "Decision history", ("Ctrl+1",), "lead"),
    ActionSpec("lead_stats", "Statistics", ("Ctrl+2",), "lead"),
    ActionSpec("lead_lists", "Hash lists", ("Ctrl+3",), "lead"),
    ActionSpec("lead_intake", "Intake: backlog, workers, failures", ("Ctrl+4",), "lead"),
    ActionSpec("lead_incident", "Incident situation", ("Ctrl+5",), "lead"),
    ActionSpec("open_review", "Review queue", ("Ctrl+Shift+R",), "lead"),
    ActionSpec("open_escalations", "Escalations (lead queue)", ("Ctrl+Shift+E",), "lead"),
    ActionSpec("open_second_review", "Second review (blind)", ("Ctrl+Shift+S",), "lead"),
    ActionSpec("lead_cheatsheet", "Keyboard cheat sheet", ("F1",), "help"),
)


def category_specs(taxonomy: Taxonomy) -> tuple[ActionSpec, ...]:
    return tuple(
        ActionSpec(f"category:{c.key}", c.label, (c.shortcut,), "category")
        for c in taxonomy.categories
    )


def effective_keys(spec: ActionSpec, overrides: Mapping[str, str] | None) -> tuple[str, ...]:
    """Keys for ``spec`` after the user's overrides ("Y" or "Y, Ctrl+Y"; "" unbinds)."""
    if overrides and spec.id in overrides:
        raw = overrides[spec.id]
        return tuple(k.strip() for k in raw.split(",") if k.strip())
    return spec.keys


def build_actions(
    parent: QWidget,
    specs: tuple[ActionSpec, ...],
    handlers: Mapping[str, Callable[[], None]],
    overrides: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, QAction]:
    """QActions for ``specs``; ``labels`` renames some (what a key does on another queue)."""
    actions: dict[str, QAction] = {}
    for spec in specs:
        action = QAction((labels or {}).get(spec.id, spec.label), parent)
        action.setObjectName(f"action_{spec.id}")
        action.setShortcuts([QKeySequence(k) for k in effective_keys(spec, overrides)])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setAutoRepeat(False)  # a held key must not fire again
        handler = handlers.get(spec.id)
        if handler is not None:
            action.triggered.connect(lambda _checked=False, h=handler: h())
        parent.addAction(action)
        actions[spec.id] = action
    return actions


def key_text(action: QAction) -> str:
    return " / ".join(
        s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts()
    )
