"""Evaluation: compare models on held-out photos.

- `evaluate.py`: the `python -m uegan_tf.eval.evaluate` command (tables
  and comparison grids);
- `metrics.py`: FID/KID, content and style metrics;
- `baselines.py`: non-learned stylization rows for the tables.
"""
