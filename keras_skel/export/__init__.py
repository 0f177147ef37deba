"""Export: SavedModels for TF Serving (`saved_model.py`), TFLite (`tflite.py`), layout."""

from keras_skel.export.saved_model import ExportResult, export_run, read_model_card

__all__ = ["export_run", "ExportResult", "read_model_card"]
