"""Inference: load a generator from any source and stylize photos and videos.

- `sources.py`: `resolve_source`, what a `--model` names (no TensorFlow:
  every command refuses a bad source before TensorFlow starts);
- `stylizer.py`: `load_generator` (style names, .keras files, work dirs,
  SavedModels, TF1 checkpoints) and `Stylizer` (tiling, brightness match);
- `video.py`: frame-by-frame video stylization through ffmpeg;
- `stylize.py`: the `uegan stylize` command;
- `beam.py`: bulk stylization with Apache Beam
  (`python -m uegan_tf.inference.beam`).

Nothing here imports the trainer, the tf.data pipeline or test fixtures.
"""
