"""The data migration that moves the default profile's candidate_k to the value chosen by the evaluation."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from recommendations import candidate_cache
from recommendations.models import RerankProfile

pytestmark = pytest.mark.django_db

migration = importlib.import_module(
    "recommendations.migrations.0012_rerank_profile_candidate_k_chosen_by_evaluation"
)


def test_default_profile_with_the_old_default_moves_to_the_new_one_and_back():
    profile = RerankProfile.objects.create(surface="default", candidate_k=migration.OLD)
    key_before = candidate_cache.stage_key(profile)
    migration.forwards(apps, None)
    profile.refresh_from_db()
    assert profile.candidate_k == migration.NEW
    assert profile.version == 2  # a new version, logged with the answers
    # the pre-computed candidate lists were made with 500 candidates: their key no longer matches
    assert candidate_cache.stage_key(profile) != key_before
    migration.backwards(apps, None)
    profile.refresh_from_db()
    assert profile.candidate_k == migration.OLD


def test_a_merchandisers_own_value_and_other_surfaces_are_kept():
    chosen = RerankProfile.objects.create(surface="default", candidate_k=300)
    home = RerankProfile.objects.create(surface="home", candidate_k=migration.OLD)
    migration.forwards(apps, None)
    chosen.refresh_from_db()
    home.refresh_from_db()
    assert (chosen.candidate_k, chosen.version) == (300, 1)
    assert home.candidate_k == migration.OLD


def test_the_models_default_is_the_new_value():
    assert RerankProfile._meta.get_field("candidate_k").default == migration.NEW
    assert RerankProfile().candidate_k == migration.NEW
