"""Champion/challenger: the rule that decides whether a newly trained model may serve."""

from __future__ import annotations

from dataclasses import dataclass

from lbx_orchestration.core.settings import GATE_CHAMPION_TOLERANCE, GATE_POPULARITY_FACTOR


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    challenger: str
    challenger_ndcg: float
    popularity_ndcg: float
    champion: str | None
    champion_ndcg: float | None
    reasons: tuple[str, ...]


def decide(
    challenger: str,
    challenger_ndcg: float,
    popularity_ndcg: float,
    champion: str | None = None,
    champion_ndcg: float | None = None,
    same_data: bool = True,
    popularity_factor: float = GATE_POPULARITY_FACTOR,
    tolerance: float = GATE_CHAMPION_TOLERANCE,
) -> GateDecision:
    """Pass when the challenger reaches ``popularity_factor`` x popularity's NDCG@10 and, if
    an accepted champion was measured on the same data, stays within ``tolerance`` (relative)
    of the champion's NDCG@10."""
    reasons = []
    floor = popularity_factor * popularity_ndcg
    ok = challenger_ndcg >= floor
    reasons.append(
        f"{challenger} NDCG@10 {challenger_ndcg:.4f} {'>=' if ok else '<'} {popularity_factor:g} x "
        f"popularity {popularity_ndcg:.4f} = {floor:.4f}"
    )
    if champion is not None and champion_ndcg is not None:
        if same_data:
            bar = champion_ndcg * (1 - tolerance)
            kept = challenger_ndcg >= bar
            ok = ok and kept
            reasons.append(
                f"{challenger} NDCG@10 {challenger_ndcg:.4f} {'>=' if kept else '<'} champion "
                f"{champion} {champion_ndcg:.4f} - {tolerance:.0%} = {bar:.4f}"
            )
        else:
            reasons.append(f"champion {champion} was measured on other data: compared with popularity only")
    return GateDecision(ok, challenger, challenger_ndcg, popularity_ndcg, champion, champion_ndcg, tuple(reasons))
