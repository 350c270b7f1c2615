from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def production_env(**extra) -> dict[str, str]:
    """Production settings: DEBUG off, a real SECRET_KEY, and this run's own database and Redis DB."""
    db = connection.settings_dict
    env = {
        k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "RECSYS_HTTPS"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="recsys_project.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="shop.example.com",
        DATABASE_URL=f"postgresql://{db['USER']}@/{db['NAME']}?host={db['HOST']}",
        REDIS_URL=settings.REDIS_URL,
        HF_HUB_OFFLINE="1",
    )
    env.update(extra)
    return env


def check_deploy(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.django_db
def test_check_deploy_is_clean_with_debug_off_and_a_real_secret_key():
    proc = check_deploy(production_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout


@pytest.mark.django_db
def test_check_deploy_flags_debug_on():
    proc = check_deploy(production_env(DEBUG="1"))
    assert proc.returncode != 0
    assert "security.W018" in proc.stdout + proc.stderr  # DEBUG must not be on in deployment
