"""`evaluate --arms EXPERIMENT`: each arm of an A/B experiment on the offline split, before it starts.

Each arm is a method of the same `evaluation_run` (`arm_<name>`), so the arms are scored exactly like
the baselines: the served path (`training.served_recommender`, training events only, nothing logged)
with the arm forced (`recommendations.experiments.arm_override`): its re-ranking profile, and its pinned
ranker or two-tower version when it has one.

What the offline figures can and cannot say:
- the served path is the single-retrieval one unless the arm pins a ranker version, so disabled candidate
  sources (which act on the ranker's candidates) change nothing offline for an arm without one;
- a pinned model version was trained on all events, the test period included: its figures are optimistic
  against an arm without one (`arm_summary` says which arms pin a version).
"""

from __future__ import annotations

from typing import Any

from recommendations import experiments
from training.served_recommender import served_scorer_factory

METHOD_PREFIX = "arm_"


def arm_methods(experiment: Any) -> dict[str, Any]:
    """extra_scorers for `evaluation_run`: one served-path scorer per arm, the control first."""
    out = {}
    for arm in sorted(experiment.arms.all(), key=lambda a: (not a.is_control, a.name)):
        config = experiments.arm_config(arm, experiment=experiment)
        out[f"{METHOD_PREFIX}{arm.name}"] = _factory(config)
    return out


def _factory(config: experiments.ArmConfig):
    def factory(data, split, stats, vectors, **options):
        score = served_scorer_factory(data, split, stats, vectors, **options)

        def scorer(users):
            with experiments.arm_override(config):
                return score(users)

        return scorer

    return factory


def arm_summary(experiment: Any) -> dict[str, dict[str, Any]]:
    """What each arm changes, saved with the run: method -> its settings."""
    return {
        f"{METHOD_PREFIX}{arm.name}": {
            "arm": arm.name,
            "control": arm.is_control,
            "traffic_percent": arm.traffic_percent,
            "profile": arm.profile.surface if arm.profile else "",
            "model_version": arm.model_version.name if arm.model_version else "",
            "disabled_sources": list(arm.disabled_sources or ()),
        }
        for arm in experiment.arms.all()
    }
