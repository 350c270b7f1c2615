"""API keys: stored as SHA-256 hashes; the plain key is shown once, when it is created."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models

KEY_PREFIX_LEN = 8


def api_key_hash(raw_key: str) -> str:
    # Keys are 256-bit random tokens, so a fast unsalted hash is safe (no dictionary to attack).
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A storefront's credential. Only its hash and a short prefix (to recognise it) are stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=KEY_PREFIX_LEN, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def assign_new_key(self) -> str:
        """Give this (unsaved) row a fresh key; returns the plain key, which is not stored anywhere."""
        raw = "rk_" + secrets.token_urlsafe(32)
        self.prefix = raw[:KEY_PREFIX_LEN]
        self.key_hash = api_key_hash(raw)
        return raw

    @classmethod
    def generate(cls, *, name: str) -> tuple[ApiKey, str]:
        key = cls(name=name)
        raw = key.assign_new_key()
        key.save()
        return key, raw
