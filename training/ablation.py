"""The re-ranking ablation: what each business rule costs the served path (`evaluate --ablation`).

One serving pass per user (`RankerPass`) already runs re-ranking once; its trace keeps re-ranking's input
(the scored candidates, the profile's config and the request's context). Re-ranking is pure, so each
variant re-applies `rerank` to that input with some steps skipped (`skip`) or some settings changed,
without another pass through retrieval and the ranker (~0.5 s a user; `rerank` is ~2 ms):

- `rules_all`: every step, as served (the same list as `served`);
- `rules_without_<step>`: every step but one, for each step of `rerank.pipeline.STEPS`;
- `rules_none`: no step: the candidates by the ranker's score, cut to the limit (the ranker's raw order
  over what re-ranking receives: the hard filters, e.g. in stock only, are already applied in the query);
- `rules_set_<n>`: every step, with some profile settings changed (`--ablation-set`, e.g. a lower
  `mmr_lambda`: what turning diversity up costs).

Each variant is a method of the same `evaluation_run`, so it is scored exactly like the others; the table
(`ablation_table`) adds each row's share of the raw order's NDCG. analytics stores it in the run's summary
and draws it on the evaluation report (`analytics.ablation_report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from recommendations.rerank.pipeline import STEPS, RerankConfig, rerank

ALL = "rules_all"
NONE = "rules_none"
# the table's columns: (metric prefix, heading); K is 10 when evaluated, else the smallest K
COLUMNS = (("ndcg", "NDCG"), ("recall", "Recall"), ("coverage", "coverage"), ("diversity", "diversity"))
TABLE_K = 10
DIVERSITY_MODES = ("mmr", "caps", "none")
AT_MOST_ONE = ("mmr_lambda", "exploration_share", "duplicate_similarity")


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: the steps left out and the settings changed."""

    method: str
    label: str
    skip: frozenset[str] = frozenset()
    settings: dict[str, Any] = field(default_factory=dict)


def settings_parse(text: str) -> dict[str, Any]:
    """`"mmr_lambda=0.8,popularity_penalty=0"` -> {"mmr_lambda": 0.8, "popularity_penalty": 0.0}, typed
    as RerankConfig's fields. Raises ValueError naming the setting that is wrong."""
    kinds = {f.name: type(getattr(RerankConfig(), f.name)) for f in fields(RerankConfig)}
    out: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, raw = part.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name or not raw:
            raise ValueError(f"{part!r}: expected setting=value")
        kind = kinds.get(name)
        if kind is None or kind is tuple:
            known = ", ".join(n for n, k in kinds.items() if k is not tuple)
            raise ValueError(f"{name!r}: not a re-ranking setting; one of {known}")
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{name}: expected true or false, got {raw!r}")
            out[name] = raw.lower() in ("true", "1")
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"{name}: expected {kind.__name__}, got {raw!r}") from None
        if name == "diversity_mode" and value not in DIVERSITY_MODES:
            raise ValueError(f"diversity_mode: one of {', '.join(DIVERSITY_MODES)}, got {raw!r}")
        if kind in (int, float) and not (0 <= value <= (1 if name in AT_MOST_ONE else float("inf"))):
            bound = "between 0 and 1" if name in AT_MOST_ONE else "at least 0"
            raise ValueError(f"{name}: must be {bound}, got {raw!r}")
        out[name] = value
    return out


def variants_build(settings: Sequence[dict[str, Any]] = ()) -> list[Variant]:
    variants = [Variant(ALL, "all rules (default)")]
    variants += [
        Variant(f"rules_without_{step}", f"without {step}", skip=frozenset({step})) for step in STEPS
    ]
    variants.append(Variant(NONE, "no rules (ranker raw)", skip=frozenset(STEPS)))
    for i, changed in enumerate(settings, start=1):
        label = ", ".join(f"{k}={v}" for k, v in changed.items())
        variants.append(Variant(f"rules_set_{i}", f"default with {label}", settings=dict(changed)))
    return variants


class Ablation:
    """Receives each user's trace (the hook in `RankerPass.run`) and returns each variant's list."""

    def __init__(self, variants: list[Variant]):
        self.variants = variants

    def lists_for(self, trace: dict[str, Any]) -> dict[str, list[int]]:
        """Method -> pks, best first. Empty when the user's answer did not go through re-ranking."""
        given = trace.get("rerank")
        if given is None:
            return {}
        config = given["config"]
        out = {}
        for variant in self.variants:
            ranked = rerank(
                given["candidates"],
                config=replace(config, **variant.settings) if variant.settings else config,
                context=given["context"],
                skip=variant.skip,
            )
            out[variant.method] = [c.pk for c in ranked]
        return out


def table_k(ks: list[int]) -> int:
    return TABLE_K if TABLE_K in ks else min(ks)


def ablation_table(metrics: dict[str, dict[str, float | None]], variants: list[Variant], *, k: int) -> dict:
    """The stored table: per variant its metrics at K and its NDCG@K as a share of the raw order's."""
    raw = (metrics.get(NONE) or {}).get(f"ndcg@{k}")
    rows = []
    for variant in variants:
        values = metrics.get(variant.method) or {}
        row: dict[str, Any] = {"method": variant.method, "label": variant.label}
        for prefix, _ in COLUMNS:
            row[f"{prefix}@{k}"] = values.get(f"{prefix}@{k}")
        ndcg = row[f"ndcg@{k}"]
        row["share_of_raw_ndcg"] = ndcg / raw if raw and ndcg is not None else None
        rows.append(row)
    return {"k": k, "baseline": NONE, "rows": rows}


def ablation_lines(table: dict) -> list[str]:
    """The table as text lines, for the command's output."""
    k = table["k"]
    heads = [f"{head}@{k}" for _, head in COLUMNS] + [f"% of raw NDCG@{k}"]
    width = max([len(r["label"]) for r in table["rows"]] + [10]) + 2
    lines = ["re-ranking ablation".ljust(width) + "".join(h.rjust(18) for h in heads)]
    for row in table["rows"]:
        cells = [row[f"{prefix}@{k}"] for prefix, _ in COLUMNS]
        text = ["-" if v is None else f"{v:.4f}" for v in cells]
        share = row["share_of_raw_ndcg"]
        text.append("-" if share is None else f"{100 * share:.1f}%")
        lines.append(row["label"].ljust(width) + "".join(t.rjust(18) for t in text))
    return lines
