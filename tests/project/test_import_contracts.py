"""The architecture's contracts (.importlinter) stay complete as modules are added."""

from __future__ import annotations

import configparser
import pkgutil
from pathlib import Path

import recommendations

REPO = Path(__file__).resolve().parents[2]


def test_the_accelerator_is_forbidden_every_recommendations_module_but_the_retrieval_interface():
    contracts = configparser.ConfigParser()
    contracts.read(REPO / ".importlinter")
    forbidden = set(contracts["importlinter:contract:accelerator"]["forbidden_modules"].split())
    modules = {f"recommendations.{m.name}" for m in pkgutil.iter_modules(recommendations.__path__)}
    missing = sorted(modules - forbidden - {"recommendations.retrieval"})
    assert not missing, f"add to the accelerator contract's forbidden_modules in .importlinter: {missing}"
    assert "recommendations.retrieval" not in forbidden
