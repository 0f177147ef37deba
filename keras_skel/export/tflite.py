"""TFLite / LiteRT export: a fixed-size `serving_default` signature with the post-processing
inside, builtin ops only (the pip LiteRT interpreter has no Flex delegate)."""

from __future__ import annotations

import tempfile

from keras_skel.errors import ConfigError

__all__ = ["convert_tflite", "convert_natural_tflite", "convert_thin_tflite", "QUANTIZATIONS"]

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


def _representative_shapes(size: tuple[int, int], count: int = 64, seed: int = 0):
    """Calibration inputs for full-integer quantization: training-like synthetic shapes."""
    import numpy as np

    from keras_skel.data.synthetic import make_shape_sample

    for index in range(count):
        shape, _ = make_shape_sample(seed, index, size, noise=2.0)
        yield {"images": shape.astype(np.float32)[None, :, :, None]}


def convert_tflite(model, threshold: float, stride: int, size: tuple[int, int], quantize: str,
                   tta: bool = False, prune_length: int = 0, gate_radius: int = 0) -> bytes:
    """Converts the serving graph at a fixed `size` to a TFLite flatbuffer.

    Args:
        model: the Keras model.
        threshold: baked-in probability threshold.
        stride: the model's stride (`size` must be a multiple).
        size: `(H, W)` of the single input image.
        quantize: `none` (fp32), `float16` (fp16 weights), `dynamic` (dynamic-range int8
            weights), `int8` (full-integer int8, calibrated on synthetic shapes; fp32 I/O).
        tta: bake D4 test-time augmentation in.
        prune_length: spur pruning after thinning (0 = off).
        gate_radius: gate the ground-truth rule on the input with the model's map (0 = off).

    Returns:
        The flatbuffer bytes.
    """
    from keras_skel.export.graph import skeletonize_images

    return _convert(model, lambda images: skeletonize_images(model, images, threshold, stride, tta, prune_length,
                                                             gate_radius=gate_radius),
                    (1, size[0], size[1], 1), quantize, lambda: _representative_shapes(tuple(size)))


def _representative_natural(size: tuple[int, int], count: int = 32, seed: int = 0):
    """Calibration inputs for full-integer quantization of natural-image models."""
    import numpy as np

    from keras_skel.data.natural import make_natural_sample

    for index in range(count):
        image, _ = make_natural_sample(seed, index, size, "train")
        yield {"images": image.astype(np.float32)[None] / 255.0}


def convert_natural_tflite(model, stride: int, threshold: float, output: str, size: tuple[int, int], quantize: str,
                           k1: int = 3, k2: int = 4, tta: bool = False, scales: tuple[float, ...] = (1.0,)) -> bytes:
    """Converts a DeepFlux serving graph (`export.graph.detect_skeletons`) at a fixed RGB input
    `size` to a TFLite flatbuffer; arguments as `convert_tflite`, `output` `flux` or `binary`,
    `scales` multi-scale averaging (`natural_raw_outputs`)."""
    from keras_skel.export.graph import detect_skeletons

    return _convert(model, lambda images: detect_skeletons(model, images, stride, threshold, output, k1, k2, tta,
                                                           scales),
                    (1, size[0], size[1], 3), quantize, lambda: _representative_natural(tuple(size)))


def _representative_thin(size: tuple[int, int], classes: int, count: int = 32, seed: int = 0):
    """Calibration inputs for full-integer quantization of thin-structure models."""
    import numpy as np

    from keras_skel.data.thin import make_thin_sample

    for index in range(count):
        image, _ = make_thin_sample(seed, index, tuple(size), classes)
        yield {"images": np.asarray(image, np.float32)[None, :, :, None]}


def convert_thin_tflite(model, stride: int, size: tuple[int, int], quantize: str, classes: int = 1) -> bytes:
    """Converts a 2-D thin-structure serving graph (`export.graph.segment_images`: `labels`,
    `probability`) at a fixed grey input `size`; `quantize` as `convert_tflite`."""
    from keras_skel.export.graph import segment_images

    return _convert(model, lambda images: segment_images(model, images, stride), (1, size[0], size[1], 1), quantize,
                    lambda: _representative_thin(tuple(size), classes))


def _convert(model, fn, input_shape: tuple[int, ...], quantize: str, representative) -> bytes:
    import keras
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    from keras_skel.export.graph import inlined_network_calls

    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the endpoints track the variables they use, and tracking the model
    # as well stores every variable a second time (twice the SavedModel size, same outputs).
    with inlined_network_calls(), tempfile.TemporaryDirectory(prefix="keras-skel-tflite-") as tmp:
        archive.add_endpoint("serving_default", fn,
                             input_signature=[tf.TensorSpec(list(input_shape), tf.float32, name="images")])
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()
