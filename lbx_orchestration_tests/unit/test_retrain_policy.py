"""The weekly retrain's policy: a challenger far behind keeps its version for a while."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from lbx_orchestration.core.recsys.models.pipeline import CARD_FILE, LATEST_FILE
from lbx_orchestration.core.recsys.models.retrain import RetrainPolicy, content_keep_reason, trailing_reason

NOW = dt.datetime(2026, 12, 6, 4, 0, tzinfo=dt.UTC)
ALIASES = ["popularity", "itemknn", "ease", "als", "lightfm"]


def _card(root: Path, alias: str, ndcg: float, days_old: int) -> Path:
    stamp = (NOW - dt.timedelta(days=days_old)).strftime("%Y%m%dT%H%M%S%f")
    folder = root / alias / f"{stamp}-abc"
    folder.mkdir(parents=True)
    (folder / CARD_FILE).write_text(json.dumps({"version": f"{stamp}-abc", "metrics": {"ndcg@10": ndcg}}))
    (root / alias / LATEST_FILE).write_text(folder.name)
    return folder


def test_a_challenger_far_behind_waits_until_its_evaluation_is_old(tmp_path: Path) -> None:
    _card(tmp_path, "popularity", 0.05, 7)
    _card(tmp_path, "ease", 0.186, 7)
    _card(tmp_path, "itemknn", 0.163, 7)  # 88% of the best: evaluated again
    als = _card(tmp_path, "als", 0.139, 7)  # 75%
    _card(tmp_path, "lightfm", 0.097, 30)  # 52%, but evaluated 30 days ago
    policy = RetrainPolicy()

    def why(alias: str, protected: frozenset[Path] = frozenset()) -> str | None:
        return trailing_reason(tmp_path, alias, ALIASES, set(protected), policy, now=NOW)

    reason = why("als")
    assert reason is not None and "trailed ease" in reason and "75%" in reason and "(7 now)" in reason
    assert why("ease") is None and why("itemknn") is None
    assert why("lightfm") is None  # its last evaluation is older than 28 days: evaluated this week
    assert why("popularity") is None  # the gate's yardstick is always measured again
    assert why("als", frozenset({als})) is None  # the served model or the champion is always refitted
    assert trailing_reason(tmp_path, "als", ALIASES, set(), RetrainPolicy(share=0), now=NOW) is None
    assert why("unknown") is None  # nothing fitted yet: fitted


def test_the_content_model_is_refitted_once_its_version_is_old() -> None:
    def card(days_old: int) -> dict:
        return {"version": (NOW - dt.timedelta(days=days_old)).strftime("%Y%m%dT%H%M%S%f") + "-1"}

    reason = content_keep_reason(card(7), 28, now=NOW)
    assert reason is not None and reason.startswith("fitted 7 days ago") and "28 days old" in reason
    assert content_keep_reason(card(28), 28, now=NOW) is None
    assert content_keep_reason(card(7), 0, now=NOW) is None  # 0: refitted every week
    assert content_keep_reason({"version": "unstamped"}, 28, now=NOW) is None
