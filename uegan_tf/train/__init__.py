"""Training: the distributed loop, its summaries and the work-dir format.

`python -m uegan_tf.train --flagfile=...` runs `__main__.py`; the loop is
`trainer.py`; `workdir.py` reads checkpoints back without the trainer.
Kept empty so that `uegan_tf.train.workdir` loads no training code.
"""
