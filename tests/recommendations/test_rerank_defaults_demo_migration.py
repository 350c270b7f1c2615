"""The data migration that moves the default profile to the freshness weight and MMR lambda chosen from the
round-5 re-ranking ablation (demo shop and Online Retail validation slices), and what those defaults do."""

from __future__ import annotations

import importlib
from dataclasses import fields

import pytest
from django.apps import apps

from recommendations.models import RerankProfile
from recommendations.rerank.pipeline import RerankConfig

migration = importlib.import_module(
    "recommendations.migrations.0016_rerank_defaults_keep_ranker_accuracy_demo"
)


@pytest.mark.django_db
def test_default_profile_with_the_old_weights_moves_to_the_new_ones_and_back():
    profile = RerankProfile.objects.create(surface="default", **migration.OLD)
    migration.forwards(apps, None)
    profile.refresh_from_db()
    assert {f: getattr(profile, f) for f in migration.NEW} == migration.NEW
    assert profile.version == 3  # one new version per changed setting, each logged with the answers
    migration.backwards(apps, None)
    profile.refresh_from_db()
    assert {f: getattr(profile, f) for f in migration.OLD} == migration.OLD


@pytest.mark.django_db
def test_a_merchandisers_own_values_and_other_surfaces_are_kept():
    chosen = RerankProfile.objects.create(surface="default", freshness_weight=0.1, mmr_lambda=0.6)
    home = RerankProfile.objects.create(surface="home", **migration.OLD)
    migration.forwards(apps, None)
    chosen.refresh_from_db()
    home.refresh_from_db()
    assert (chosen.freshness_weight, chosen.mmr_lambda) == (0.1, 0.6)
    assert {f: getattr(home, f) for f in migration.OLD} == migration.OLD


def test_the_models_and_the_pipelines_defaults_are_the_new_weights():
    assert {f: RerankProfile._meta.get_field(f).default for f in migration.NEW} == migration.NEW
    assert {f: getattr(RerankConfig(), f) for f in migration.NEW} == migration.NEW
    # a profile without a row of its own serves the same weights as the built-in config
    profile_defaults = {f.name: RerankProfile._meta.get_field(f.name).default for f in fields(RerankConfig)}
    built_in = {f.name: getattr(RerankConfig(), f.name) for f in fields(RerankConfig)}
    assert {k: v for k, v in profile_defaults.items() if not callable(v)} == {
        k: built_in[k] for k, v in profile_defaults.items() if not callable(v)
    }
