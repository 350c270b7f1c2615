"""The accelerator's files, under `RECSYS_FAISS_DIR` (default `$RECSYS_DATA_DIR/faiss/`):

    CURRENT.json              the manifest of the published version (the pointer readers follow)
    v-<version>/index.faiss   the FAISS index; ids are positions (slots) 0..n-1 in pk order
    v-<version>/meta.npz      per slot: pk, in-stock flag, price in cents, category id; the category table
    v-<version>/manifest.json a copy of the manifest
    deltas/<seq>.npz          a delta segment: the state of some items, read after they changed

Publishing is atomic: a version is written under a temporary directory name, renamed into place, and only
then does `CURRENT.json` (written to a temporary name and `os.replace`d) point to it. A reader therefore sees
the old complete version or the new complete version, never a half-written one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
from django.conf import settings

from accelerator.selectors import ItemRows

FORMAT = 1
CURRENT = "CURRENT.json"
DELTAS = "deltas"
# Versions kept besides the current one: a process may still be loading the previous one.
VERSIONS_KEPT = 1


def faiss_dir() -> Path:
    path = Path(getattr(settings, "RECSYS_FAISS_DIR", None) or Path(settings.RECSYS_DATA_DIR) / "faiss")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Manifest:
    version: str
    index_type: str  # "flat" or "hnsw"
    embedding_model: str
    dim: int
    count: int
    built_at: str  # ISO 8601, UTC
    # Every delta segment numbered up to here was taken before the build read the table, so its changes
    # are in the index already; segments after it are applied on top.
    delta_seq: int
    build_seconds: float
    params: dict = field(default_factory=dict)
    format: int = FORMAT

    @property
    def directory(self) -> Path:
        return faiss_dir() / f"v-{self.version}"


def version_new() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def manifest_read() -> Manifest | None:
    """The published manifest, or None before the first build (or if it is unreadable)."""
    try:
        data = json.loads((faiss_dir() / CURRENT).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if data.get("format") != FORMAT:
        return None
    return Manifest(**data)


def manifest_signature() -> tuple[int, int] | None:
    """A cheap fingerprint of the pointer file (inode, mtime): it changes on every publish."""
    try:
        st = os.stat(faiss_dir() / CURRENT)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def version_publish(*, manifest: Manifest, index: faiss.Index, rows: ItemRows, categories: list) -> None:
    """Write a complete version, then point CURRENT.json at it. `rows.vectors` is not written: the index
    holds the vectors."""
    final = manifest.directory
    tmp = faiss_dir() / f".tmp-{manifest.version}"
    tmp.mkdir()
    try:
        faiss.write_index(index, str(tmp / "index.faiss"))
        with open(tmp / "meta.npz", "wb") as fh:
            np.savez(
                fh,
                pks=rows.pks,
                in_stock=rows.in_stock,
                price_cents=rows.price_cents,
                category_ids=_category_ids(rows.category_paths, categories),
                categories=np.array(json.dumps([list(c) for c in categories])),
            )
        (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_atomic(faiss_dir() / CURRENT, json.dumps(asdict(manifest), indent=2).encode())


def _category_ids(paths: list[tuple[str, ...]], categories: list[tuple[str, ...]]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(categories)}
    return np.fromiter((lookup[p] for p in paths), np.int32, len(paths))


@dataclass(frozen=True)
class StoredVersion:
    manifest: Manifest
    index: faiss.Index
    pks: np.ndarray
    in_stock: np.ndarray
    price_cents: np.ndarray
    category_ids: np.ndarray
    categories: list[tuple[str, ...]]


def version_load(manifest: Manifest) -> StoredVersion:
    directory = manifest.directory
    index = faiss.read_index(str(directory / "index.faiss"))
    with np.load(directory / "meta.npz", allow_pickle=False) as meta:
        return StoredVersion(
            manifest=manifest,
            index=index,
            pks=meta["pks"],
            in_stock=meta["in_stock"],
            price_cents=meta["price_cents"],
            category_ids=meta["category_ids"],
            categories=[tuple(c) for c in json.loads(str(meta["categories"]))],
        )


def version_in_memory(
    *, manifest: Manifest, index: faiss.Index, rows: ItemRows, categories: list
) -> StoredVersion:
    """A version held by one process only (a model space's index, model_space.py): nothing is written."""
    return StoredVersion(
        manifest=manifest,
        index=index,
        pks=rows.pks,
        in_stock=rows.in_stock,
        price_cents=rows.price_cents,
        category_ids=_category_ids(rows.category_paths, categories),
        categories=list(categories),
    )


def versions_prune(*, current: str) -> None:
    """Delete old versions (keeping VERSIONS_KEPT besides the current) and leftovers of failed builds."""
    root = faiss_dir()
    versions = sorted(p for p in root.glob("v-*") if p.is_dir() and p.name != f"v-{current}")
    for old in versions[: max(0, len(versions) - VERSIONS_KEPT)]:
        shutil.rmtree(old, ignore_errors=True)
    for leftover in root.glob(".tmp-*"):
        if leftover.name != f".tmp-{current}":
            shutil.rmtree(leftover, ignore_errors=True)


# --- delta segments


@dataclass(frozen=True)
class Delta:
    """The state of `item_pks` as read after their change: those in `rows` are (re)indexed with that
    state, the others are removed."""

    seq: int
    embedding_model: str
    item_pks: np.ndarray
    rows: ItemRows


def _deltas_dir() -> Path:
    path = faiss_dir() / DELTAS
    path.mkdir(exist_ok=True)
    return path


def delta_write(delta: Delta) -> Path:
    path = _deltas_dir() / f"{delta.seq:012d}.npz"
    buf = tempfile.SpooledTemporaryFile()
    np.savez(
        buf,
        seq=np.int64(delta.seq),
        embedding_model=np.array(delta.embedding_model),
        item_pks=delta.item_pks.astype(np.int64),
        pks=delta.rows.pks,
        vectors=delta.rows.vectors,
        in_stock=delta.rows.in_stock,
        price_cents=delta.rows.price_cents,
        category_paths=np.array(json.dumps([list(c) for c in delta.rows.category_paths])),
    )
    buf.seek(0)
    _write_atomic(path, buf.read())
    return path


def delta_seqs() -> list[int]:
    """The numbers of the segments on disk, ascending."""
    seqs = []
    with os.scandir(_deltas_dir()) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".npz") and not name.startswith("."):
                seqs.append(int(name[:-4]))
    return sorted(seqs)


def delta_read(seq: int) -> Delta | None:
    """The segment, or None if it was pruned meanwhile (a build folded it into a new version)."""
    try:
        with np.load(_deltas_dir() / f"{seq:012d}.npz", allow_pickle=False) as data:
            return Delta(
                seq=int(data["seq"]),
                embedding_model=str(data["embedding_model"]),
                item_pks=data["item_pks"],
                rows=ItemRows(
                    pks=data["pks"],
                    vectors=data["vectors"],
                    in_stock=data["in_stock"],
                    price_cents=data["price_cents"],
                    category_paths=[tuple(c) for c in json.loads(str(data["category_paths"]))],
                ),
            )
    except FileNotFoundError:
        return None


def deltas_prune(*, up_to_seq: int) -> int:
    """Delete segments already folded into the published version."""
    removed = 0
    for seq in delta_seqs():
        if seq <= up_to_seq:
            (_deltas_dir() / f"{seq:012d}.npz").unlink(missing_ok=True)
            removed += 1
    return removed
