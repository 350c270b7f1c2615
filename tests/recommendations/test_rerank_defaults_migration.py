"""The data migration that moves the default profile to the weights chosen from the re-ranking ablation."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from recommendations.models import RerankProfile

pytestmark = pytest.mark.django_db

migration = importlib.import_module("recommendations.migrations.0005_rerank_defaults_keep_ranker_accuracy")


def test_default_profile_with_the_old_weights_moves_to_the_new_ones_and_back():
    profile = RerankProfile.objects.create(surface="default", **migration.OLD)
    migration.forwards(apps, None)
    profile.refresh_from_db()
    assert {f: getattr(profile, f) for f in migration.NEW} == migration.NEW
    assert profile.version == 3  # one new version per changed setting, each logged with the answers
    migration.backwards(apps, None)
    profile.refresh_from_db()
    assert {f: getattr(profile, f) for f in migration.OLD} == migration.OLD


def test_a_merchandisers_own_values_and_other_surfaces_are_kept():
    chosen = RerankProfile.objects.create(surface="default", popularity_penalty=0.02, mmr_lambda=0.6)
    home = RerankProfile.objects.create(surface="home", **migration.OLD)
    migration.forwards(apps, None)
    chosen.refresh_from_db()
    home.refresh_from_db()
    assert (chosen.popularity_penalty, chosen.mmr_lambda) == (migration.NEW["popularity_penalty"], 0.6)
    assert (home.popularity_penalty, home.mmr_lambda) == (0.02, 0.8)


def test_the_models_default_popularity_penalty_is_the_new_one():
    # mmr_lambda moved on again in 0015 (tests/recommendations/test_rerank_defaults_demo_migration.py)
    field = RerankProfile._meta.get_field("popularity_penalty")
    assert field.default == migration.NEW["popularity_penalty"]
