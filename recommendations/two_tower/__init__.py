"""The learned two-tower model: the item tower (content embedding + learned id, category, brand and price
features) and the user tower (attention pooling over the recent items, in order), trained with a sampled
softmax over in-batch negatives with a logQ popularity correction.

- `features.py`: item features and the training sequences, as arrays (no torch).
- `model.py`: the towers (torch), and the user tower's numpy forward used on the request path.
- `training.py`: the training loop (early stopping on a held-out validation slice).
- `artifacts.py`: saving and loading a trained model.
- `serving.py`: the user tower online and retrieval over the active version's item vectors.

In the training app: `training.two_tower.evaluation` (the model as a method of `training.evaluation`,
trained on the split's training events) and `training.two_tower.registry` (ModelVersion life cycle: train,
gate, write the item vectors, activate, roll back).
"""
