"""The weekly retrain's policy: which collaborative models are evaluated and refitted this week.

Every model that could be served is evaluated and refitted on every rating each week. A
challenger that trailed the best model by more than ``1 - share`` of its NDCG@10 at its last
evaluation cannot win this week (a week of ratings moves these figures by far less), so it
keeps its version until that evaluation is ``days`` old; at ML-32M size that saves LightFM's
and ALS's fits (about 300 s of a 750 s refresh). The served model, the champion and the
popularity baseline (the gate's yardstick) are always refitted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from lbx_orchestration.core.recsys.models.pipeline import CARD_FILE, latest_path

ALWAYS = frozenset({"popularity"})
METRIC = "ndcg@10"


@dataclass(frozen=True)
class RetrainPolicy:
    share: float = 0.8  # a challenger below this share of the best NDCG@10 waits
    days: int = 28  # ... until its last evaluation is this old


def _card(models_dir: Path, alias: str) -> tuple[Path, dict] | None:
    try:
        path = latest_path(models_dir, alias)
        return path, json.loads((path / CARD_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


def fitted_on(card: dict) -> dt.datetime | None:
    """When a version was fitted: its version stamp (``20261207T044358...``)."""
    try:
        return dt.datetime.strptime(str(card["version"])[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    except (KeyError, ValueError):
        return None


def trailing_reason(
    models_dir: Path,
    alias: str,
    others: list[str],
    protected: set[Path],
    policy: RetrainPolicy,
    now: dt.datetime | None = None,
) -> str | None:
    """Why ``alias`` keeps its version this week, or None when it is evaluated and refitted."""
    if alias in ALWAYS or policy.share <= 0:
        return None
    mine = _card(Path(models_dir), alias)
    if mine is None or mine[0] in protected:
        return None
    path, card = mine
    score, when = card.get("metrics", {}).get(METRIC), fitted_on(card)
    if not isinstance(score, float) or when is None:
        return None
    age = (now or dt.datetime.now(dt.UTC)) - when
    if age >= dt.timedelta(days=policy.days):
        return None
    rivals = {o: c[1].get("metrics", {}).get(METRIC) for o in others if o != alias and (c := _card(models_dir, o))}
    rivals = {o: s for o, s in rivals.items() if isinstance(s, float)}
    if not rivals:
        return None
    best = max(rivals, key=rivals.__getitem__)
    if score >= policy.share * rivals[best]:
        return None
    return (
        f"trailed {best} at its last evaluation ({METRIC} {score:.4f} against {rivals[best]:.4f}, "
        f"{score / rivals[best]:.0%}): a challenger below {policy.share:.0%} of the best keeps its version "
        f"until that evaluation is {policy.days} days old ({age.days} now) instead of being refitted weekly"
    )


def content_keep_reason(card: dict, days: int, now: dt.datetime | None = None) -> str | None:
    """Why the content model keeps its version this week, or None when it is refitted. It
    scores new films from their features without a refit, and members whose films changed are
    folded into it when their lists are written, so a week of ratings does not move it; its
    refit is the weekly retrain's largest step (about 130 s at ML-32M size)."""
    when = fitted_on(card)
    if days <= 0 or when is None:
        return None
    age = (now or dt.datetime.now(dt.UTC)) - when
    if age >= dt.timedelta(days=days):
        return None
    return (
        f"fitted {age.days} days ago: the content model is refitted once its version is {days} days old "
        "(new films are scored from their features, members whose films changed are folded in)"
    )
