"""Data: TFRecord schema, dataset preparation and the training pipeline."""
