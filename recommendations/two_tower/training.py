"""Training: next-item prediction over the actors' sequences, with a sampled softmax whose negatives are
the other targets of the batch, corrected by log Q (the chance that an item is a batch target), and early
stopping on a held-out validation slice (each eligible user's last training item, never the test split).

The event stream is duck-typed like `training.evaluation.EventData` (user_ids, item_idx, ts, event_type,
item_pks, active), so offline evaluation and `train_model` train on exactly the same code.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from django.conf import settings
from torch.nn import functional as F
from tqdm import tqdm

from recommendations.two_tower.features import (
    PAD,
    Encoded,
    Examples,
    ItemFeatures,
    examples_build,
    item_features_load,
    price_boundaries_fit,
    price_buckets,
)
from recommendations.two_tower.model import ModelShape, TwoTower

# Actors whose id starts with this are anonymous sessions (training.evaluation.SESSION_ACTOR): they train,
# but are not used for validation.
SESSION_PREFIX = "s:"
# Validation ranks the whole catalog for the last target of this many users at most (a sample fixed by the
# seed; users with fewer than 3 distinct items give none). Each is held out of training, so none is wasted.
VALID_MAX_USERS = 5000


@dataclass
class TrainConfig:
    dim: int = 64
    # The content embedding goes through a hidden layer of this width (0: one linear projection). The
    # settings below were chosen on the training-side validation slice of Online Retail (never on the test
    # splits); docs/two-tower.md and docs/benchmarks.md ("Two-tower") list what was tried.
    hidden: int = 256
    max_len: int = 30  # recent items the user tower reads
    # Large batches: more in-batch negatives per step, and the item tower runs once per distinct item of the
    # batch, so fewer steps cost less (an epoch of 123,000 examples is ~14 s on an idle core).
    batch_size: int = 2048
    max_epochs: int = 10
    patience: int = 2
    lr: float = 3e-3
    temperature: float = 0.05
    id_min_count: int = 2  # items seen as a target at least this often get their own id embedding
    max_ids: int = 200_000  # cap on id embeddings (the long tail shares the "unknown" id 0)
    # Regularisation: the id embeddings memorise otherwise (validation peaked at epoch 3-4 and fell).
    id_dropout: float = 0.5  # share of a step's items that go through the content-only path
    dropout: float = 0.2  # on the user tower's input items, while training
    # The user vector is the attention-pooled history plus a learned correction (False: the newest item
    # plus the correction, as v1 models were).
    residual_pooled: bool = True
    cat_buckets: int = 1024
    brand_buckets: int = 1024
    price_buckets: int = 16
    logq: bool = True
    # Strength of the logQ correction: 1 makes the logits unbiased estimates of the full softmax's; 0
    # (no correction) leaves in-batch softmax's bias against popular items.
    logq_weight: float = 1.25
    strict_history: bool = True  # train on next-visit targets only (see features.examples_build)
    seed: int = 0
    # torch threads: 1, as for embedding (RECSYS_EMBEDDING_THREADS): on 2 cores shared with the web and
    # worker processes, 2 threads measured slower than 1.
    threads: int = 1

    @classmethod
    def from_settings(cls, **overrides) -> TrainConfig:
        values = dict(getattr(settings, "RECSYS_TWO_TOWER", {}) or {})
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainedModel:
    """A trained model with what serving needs to use it: the id slot of each known item pk and the price
    bucket boundaries (features of new items are built the same way)."""

    model: TwoTower
    config: TrainConfig
    id_by_pk: dict[int, int]
    price_boundaries: list[float]
    history: list[dict] = field(default_factory=list)  # per epoch: loss, validation ndcg@10 and recall@10
    best_epoch: int = 0
    seconds: float = 0.0
    examples: int = 0
    validation_users: int = 0

    def item_vectors(self, features: ItemFeatures, *, batch: int = 8192) -> np.ndarray:
        """Item-tower vectors for these items (an item without an id slot: from its content alone)."""
        ids = np.array([self.id_by_pk.get(int(pk), 0) for pk in features.pks], dtype=np.int64)
        return _item_vectors(
            self.model, features, ids, price_buckets(features.price, self.price_boundaries), batch
        )


def _item_vectors(model, features: ItemFeatures, ids, prices, batch: int = 8192) -> np.ndarray:
    out = np.zeros((len(ids), model.shape.dim), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(ids), batch):
            out[s : s + batch] = model.items(
                torch.from_numpy(features.content[s : s + batch]),
                torch.from_numpy(ids[s : s + batch]),
                torch.from_numpy(features.category[s : s + batch]),
                torch.from_numpy(features.brand[s : s + batch]),
                torch.from_numpy(prices[s : s + batch]),
            ).numpy()
    return out


def user_vectors_batch(
    model: TwoTower, item_vecs: np.ndarray, seqs: Encoded, *, batch: int = 4096
) -> np.ndarray:
    """User-tower vectors for encoded sequences, given every item's vector (by item index)."""
    out = np.zeros((len(seqs.items), model.shape.dim), dtype=np.float32)
    table = torch.from_numpy(np.vstack([item_vecs, np.zeros((1, item_vecs.shape[1]), np.float32)]))
    pad_row = len(item_vecs)
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(seqs.items), batch):
            items = torch.from_numpy(seqs.items[s : s + batch])
            mask = items >= 0
            tokens = table[torch.where(mask, items, pad_row)]
            out[s : s + batch] = model.users(
                tokens,
                torch.from_numpy(seqs.types[s : s + batch]),
                torch.from_numpy(seqs.ages[s : s + batch]),
                mask,
            ).numpy()
    return out


def model_train(
    *,
    stream,
    train_rows: np.ndarray,
    config: TrainConfig,
    features: ItemFeatures | None = None,
    progress: bool = True,
) -> TrainedModel:
    """Train on the events `train_rows` of `stream`. Deterministic for a given seed and thread count."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    torch.set_num_threads(max(1, config.threads))
    n_items = len(stream.item_pks)
    if features is None:
        features = item_features_load(
            item_pks=stream.item_pks, cat_buckets=config.cat_buckets, brand_buckets=config.brand_buckets
        )

    actors = stream.user_ids[train_rows]
    users = np.unique(actors[~np.char.startswith(actors.astype(str), SESSION_PREFIX)]) if len(actors) else []
    holdout = set(rng.permutation(np.asarray(users, dtype=object))[:VALID_MAX_USERS].tolist())
    train, valid = examples_build(
        actors=stream.user_ids,
        item_idx=stream.item_idx,
        ts=stream.ts,
        event_type=stream.event_type,
        rows=train_rows,
        max_len=config.max_len,
        holdout_actors=holdout,
        strict=config.strict_history,
    )
    # id slots for items that are targets often enough, most frequent first, up to the cap
    counts = np.bincount(train.target, minlength=n_items)
    frequent = np.flatnonzero(counts >= config.id_min_count)
    frequent = frequent[np.argsort(-counts[frequent], kind="stable")][: config.max_ids]
    ids = np.zeros(n_items, dtype=np.int64)
    ids[frequent] = np.arange(1, len(frequent) + 1)
    boundaries = price_boundaries_fit(features.price, config.price_buckets)
    prices = price_buckets(features.price, boundaries)
    # log Q: the chance of an item being a target in a batch (smoothed so unseen items stay finite)
    logq = torch.from_numpy(np.log((counts + 1.0) / (counts.sum() + n_items)).astype(np.float32))

    shape = ModelShape(
        content_dim=features.content.shape[1],
        dim=config.dim,
        hidden=config.hidden,
        n_ids=len(frequent),
        cat_buckets=config.cat_buckets,
        brand_buckets=config.brand_buckets,
        price_buckets=len(boundaries) + 1,
        max_len=config.max_len,
        residual_pooled=config.residual_pooled,
    )
    model = TwoTower(shape, dropout=config.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    t_content = torch.from_numpy(features.content)
    t_cat = torch.from_numpy(features.category)
    t_brand = torch.from_numpy(features.brand)
    t_price = torch.from_numpy(prices)
    t_ids = torch.from_numpy(ids)
    active = getattr(stream, "active", np.ones(n_items, dtype=bool))

    result = TrainedModel(
        model=model,
        config=config,
        id_by_pk={int(stream.item_pks[i]): int(ids[i]) for i in frequent},
        price_boundaries=boundaries,
        examples=len(train.target),
        validation_users=len(valid.target),
    )
    best_score, best_state, stale = -math.inf, copy.deepcopy(model.state_dict()), 0
    n = len(train.target)
    steps = max(1, math.ceil(n / config.batch_size))
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = rng.permutation(n)
        total = 0.0
        bar = tqdm(range(steps), desc=f"epoch {epoch}", unit="batch", disable=not progress, leave=False)
        for step in bar:
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            hist = train.history.items[batch]
            target = train.target[batch]
            mask_np = hist >= 0
            # the item tower runs once per distinct item of the batch
            uniq, inverse = np.unique(np.concatenate([hist[mask_np], target]), return_inverse=True)
            # Padded to a multiple of 1,024 rows (the padding is computed and never read): tensors of a few
            # sizes only, which glibc's allocator reuses; with a size per step, its heap fragmented to
            # 2.3 GB peak RSS on Online Retail instead of 1.1 GB.
            u_idx = torch.from_numpy(np.pad(uniq, (0, -len(uniq) % 1024)))
            batch_ids = t_ids[u_idx]
            if config.id_dropout > 0:
                drop = F.pad(torch.rand(len(uniq)) < config.id_dropout, (0, len(u_idx) - len(uniq)))
                batch_ids = torch.where(drop, torch.zeros_like(batch_ids), batch_ids)
            vecs = model.items(t_content[u_idx], batch_ids, t_cat[u_idx], t_brand[u_idx], t_price[u_idx])
            n_hist = int(mask_np.sum())
            local = np.full(hist.shape, len(uniq), dtype=np.int64)
            local[mask_np] = inverse[:n_hist]
            target_local = torch.from_numpy(inverse[n_hist:])
            padded = torch.cat([vecs, torch.zeros(1, vecs.shape[1])])
            # F.embedding, not padded[local]: its backward is a dense embedding backward, several times
            # cheaper on CPU than the scatter-add of advanced indexing
            tokens = F.embedding(torch.from_numpy(local), padded)
            mask = torch.from_numpy(mask_np)
            user = model.users(
                tokens,
                torch.from_numpy(train.history.types[batch]),
                torch.from_numpy(train.history.ages[batch]),
                mask,
            )
            item = F.embedding(target_local, vecs)
            logits = user @ item.T / config.temperature
            t_target = torch.from_numpy(target)
            if config.logq:
                logits = logits - config.logq_weight * logq[t_target][None, :]
            # another row with the same target item is not a negative
            same = t_target[:, None] == t_target[None, :]
            same.fill_diagonal_(False)
            logits = logits.masked_fill(same, float("-inf"))
            loss = F.cross_entropy(logits, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total / (step + 1):.3f}")
        bar.close()
        ndcg, recall = _validate(model, features, ids, prices, valid, active) if len(valid.target) else (0, 0)
        result.history.append(
            {"epoch": epoch, "loss": total / steps, "valid_ndcg@10": ndcg, "valid_recall@10": recall}
        )
        if progress:
            tqdm.write(
                f"epoch {epoch}: loss {total / steps:.4f}  valid ndcg@10 {ndcg:.4f}  recall@10 {recall:.4f}"
            )
        if not len(valid.target):  # nothing to validate on (tiny data): train every epoch, keep the last
            best_state, result.best_epoch = copy.deepcopy(model.state_dict()), epoch
        elif ndcg > best_score:
            best_score, best_state, stale, result.best_epoch = (
                ndcg,
                copy.deepcopy(model.state_dict()),
                0,
                epoch,
            )
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def _validate(model, features, ids, prices, valid: Examples, active: np.ndarray) -> tuple[float, float]:
    """NDCG@10 and Recall@10 of the validation targets, ranked over the whole active catalog with each
    user's earlier items removed (as the offline evaluation and serving do)."""
    item_vecs = _item_vectors(model, features, ids, prices)
    users = user_vectors_batch(model, item_vecs, valid.history)
    ndcg = hits = 0.0
    for s in range(0, len(users), 1024):
        scores = users[s : s + 1024] @ item_vecs.T
        scores[:, ~active] = -np.inf
        for r, seen in enumerate(valid.seen[s : s + 1024]):
            scores[r, seen] = -np.inf
        target = valid.target[s : s + 1024]
        target_scores = scores[np.arange(len(target)), target]
        rank = (scores > target_scores[:, None]).sum(axis=1)  # 0 = first
        inside = np.isfinite(target_scores) & (rank < 10)
        hits += float(inside.sum())
        ndcg += float((inside / np.log2(rank + 2.0)).sum())
    return ndcg / len(users), hits / len(users)


__all__ = ["PAD", "TrainConfig", "TrainedModel", "model_train", "user_vectors_batch"]
