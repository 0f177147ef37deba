"""The serving graph around a Keras model: pre-processing, model, post-processing, all TF ops.

These functions build the `tf.function`s that go into a SavedModel (and, at a fixed size, into
a TFLite model), so the same code runs in TF Serving, in LiteRT and in `keras-skel predict`.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref

import tensorflow as tf

from keras_skel.ops.padding import crop_to, pad_to_multiple
from keras_skel.ops.postprocess import probability_to_skeleton

__all__ = ["skeletal_outputs", "probability_of", "traced_once", "inlined_network_calls", "skeletonize_images",
           "decode_binary_png", "make_png_fn", "detect_skeletons",
           "natural_raw_outputs", "skeletons_from_outputs", "d4_vector_map", "d4_average",
           "decode_rgb_png", "make_natural_png_fn", "decode_grey_image", "segment_images", "make_thin_png_fn"]


_TRACED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_INLINE: contextvars.ContextVar[bool] = contextvars.ContextVar("keras_skel_inline_network_calls", default=False)


@contextlib.contextmanager
def inlined_network_calls():
    """Within this block, `traced_once` functions are not marked `_noinline`: the TFLite
    converter refuses calls it may not inline ("unsupported StatefulPartitionedCallOp")."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


def traced_once(model):
    """`model` as a callable `net(x, training=False)` that runs one `tf.function` per channel
    count and inlining mode (signature float32 `[None, None, None, C]`), kept for the model's
    lifetime.

    Test-time augmentation calls the network 8 times per graph (16 with two scales), and an
    export traces each serving function more than once (the endpoint, then the signature):
    called inline, every call traced the whole network again (an ensemble of two CANets with
    TTA: 32 network traces, 70 s of an export's 90 s) and the graph held 8 copies of it. Through
    this wrapper the network is traced once and each call is a call op to that one function.
    Models that cannot be weakly referenced are called as they are.

    The function is marked `_noinline` (outside `inlined_network_calls`, which the TFLite
    conversion uses): TensorFlow otherwise inlines every call before its graph optimizer runs,
    so a loaded SavedModel's first call optimized 8 (16) copies of the network. Measured in
    fresh processes on this 2-core CPU (`tf.saved_model.load`, then the first
    `serving_default` call): the tiny 2-CANet ensemble with TTA at 64² 10.1 → 3.8 s
    (`predict_png` 11.0 → 4.5 s), the shipped two-denoiser graph with TTA at 256² 6.5-7.6 →
    4.8-5.1 s; later calls take as long as before (1.9-2.2 s at 256², both).
    """
    try:
        cache = _TRACED.setdefault(model, {})
    except TypeError:
        return model
    ref = weakref.ref(model)  # the cached function must not keep the model alive

    def net(x, training=False, _model=model):  # ...but the caller's callable does
        key = (int(x.shape[-1]), not _INLINE.get())
        if key not in cache:
            cache[key] = tf.function(
                lambda images: ref()(images, training=False),
                input_signature=[tf.TensorSpec([None, None, None, key[0]], tf.float32)], autograph=False,
                experimental_attributes={"_noinline": key[1]})
        return cache[key](tf.cast(x, tf.float32))

    return net


def _probability(model, binary: tf.Tensor, stride: int) -> tf.Tensor:
    shape = tf.shape(binary)
    probability = model(pad_to_multiple(binary, stride), training=False)
    return crop_to(tf.cast(probability, tf.float32), shape[1], shape[2])


def probability_of(model, binary: tf.Tensor, stride: int, tta: bool = False) -> tf.Tensor:
    """Skeleton probability of binary shapes `[N, H, W, 1]` (any H, W: padded to `stride`, then
    cropped back).

    With `tta`, the model runs on the 8 D4 transforms of the input (90° rotations × mirror) and
    the 8 maps, transformed back, are averaged (test-time augmentation; exact for a skeleton
    task, since D4 maps the pixel grid onto itself). 8× the compute.
    """
    if not tta:
        return _probability(model, binary, stride)
    net = traced_once(model)
    return d4_average(lambda x: _probability(net, x, stride), binary)


def d4_average(run, images: tf.Tensor, vectors: bool = False) -> tf.Tensor:
    """Test-time augmentation: `run` on the 8 D4 transforms of `images` (`[N, H, W, C]`:
    `tf.image.rot90` by k, then a left-right mirror), each output turned back and the 8
    averaged. With `vectors`, a 2-channel output is a vector field `(dy, dx)` whose vectors are
    turned back as well (`d4_vector_map`)."""
    total = None
    for k in range(4):
        for flip in (False, True):
            x = tf.image.rot90(images, k=k)
            x = tf.image.flip_left_right(x) if flip else x
            out = run(x)
            out = tf.image.flip_left_right(out) if flip else out
            out = tf.image.rot90(out, k=(4 - k) % 4)
            if vectors and out.shape[-1] == 2:
                out = tf.einsum("nhwj,ij->nhwi", out, tf.constant(d4_vector_map(k, flip), tf.float32))
            total = out if total is None else total + out
    return total / 8.0


def skeletonize_images(model, images: tf.Tensor, threshold: float, stride: int,
                       tta: bool = False, prune_length: int = 0, max_size: int | None = None,
                       gate_radius: int = 0) -> dict[str, tf.Tensor]:
    """`images` float32 `[N, H, W, 1]` (0..1) → `{"skeleton": uint8, "probability": float32}`.

    Binarizes at 0.5, pads to `stride`, runs the model (optionally with D4 test-time
    augmentation), crops back, thresholds and thins (and prunes spurs shorter than
    `prune_length`; with `gate_radius` the map gates the ground-truth rule on the input, see
    `probability_to_skeleton`). With `max_size`, larger images are
    refused with an InvalidArgument error that says to tile them (a CANet's attention memory
    grows with (H·W)²; `keras-skel predict` tiles); not for TFLite graphs (Assert is no
    builtin op; their input size is fixed anyway).
    """
    if max_size is not None:
        side = tf.reduce_max(tf.shape(images)[1:3])
        tf.debugging.assert_less_equal(
            side, tf.constant(int(max_size), side.dtype),
            message=f"images larger than {max_size} px on a side exceed this model's attention memory; "
                    f"send overlapping tiles of at most {max_size}x{max_size} (keras-skel predict does)")
    binary = tf.cast(images > 0.5, tf.float32)
    probability = probability_of(model, binary, stride, tta)
    skeleton = probability_to_skeleton(probability, threshold, prune_length, gate_radius, binary)
    return {"skeleton": skeleton, "probability": probability}


def decode_grey_image(image_bytes: tf.Tensor, alpha_is_shape: bool = False) -> tf.Tensor:
    """PNG/JPEG/BMP/GIF bytes → float32 `[H, W, 1]` grey values in 0..1.

    8- and 16-bit images are decoded to a 16-bit range (so both scale to 0..1); RGB goes through
    luminance (0.299, 0.587, 0.114); an alpha channel is dropped, or, with `alpha_is_shape`,
    used instead of the colour where it is not constant (the binary-shape rule, DESIGN.md §3).
    """
    image = tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint16, expand_animations=False)
    image = tf.cast(image, tf.float32) / 65535.0
    channels = tf.shape(image)[-1]

    def luminance(rgb):
        return tf.reduce_sum(rgb * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)

    def from_rgb_or_alpha(colour, alpha):
        if not alpha_is_shape:
            return colour
        alpha_varies = tf.reduce_max(alpha) > tf.reduce_min(alpha)
        return tf.cond(alpha_varies, lambda: alpha, lambda: colour)

    grey = tf.switch_case(
        tf.clip_by_value(channels, 1, 4) - 1,
        [
            lambda: image[..., :1],
            lambda: from_rgb_or_alpha(image[..., :1], image[..., 1:2]),
            lambda: luminance(image[..., :3]),
            lambda: from_rgb_or_alpha(luminance(image[..., :3]), image[..., 3:4]),
        ],
    )
    grey.set_shape([None, None, 1])
    return grey


def decode_binary_png(image_bytes: tf.Tensor) -> tf.Tensor:
    """PNG/JPEG/BMP/GIF bytes → float32 `[H, W, 1]` binary shape, by the dataset rule.

    8- and 16-bit images are decoded to a 16-bit range and binarized at 50%; RGB(A) goes
    through luminance; a non-constant alpha channel is the shape (DESIGN.md §3).
    """
    return tf.cast(decode_grey_image(image_bytes, alpha_is_shape=True) > 0.5, tf.float32)


def make_png_fn(model, threshold: float, stride: int, tta: bool = False, prune_length: int = 0,
                max_size: int | None = None, gate_radius: int = 0):
    """`image_bytes` string `[N]` → `skeleton_png_bytes` string `[N]` (each image its own size)."""

    def one(image_bytes):
        binary = decode_binary_png(image_bytes)
        out = skeletonize_images(model, tf.expand_dims(binary, 0), threshold, stride, tta, prune_length, max_size,
                                 gate_radius)
        return tf.io.encode_png(out["skeleton"][0] * tf.constant(255, tf.uint8))

    def png_fn(image_bytes):
        encoded = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {"skeleton_png_bytes": encoded}

    return png_fn


def _natural_raw(model, images: tf.Tensor, stride: int) -> tf.Tensor:
    shape = tf.shape(images)
    raw = model(pad_to_multiple(tf.cast(images, tf.float32), stride), training=False)
    return crop_to(tf.cast(raw, tf.float32), shape[1], shape[2])


def d4_vector_map(k: int, flip: bool):
    """The 2×2 matrix J with `v_old = J · v_new` for vectors `(dy, dx)` of an image turned by
    `tf.image.rot90(·, k)` and then, when `flip`, mirrored left-right (the transform
    `probability_of` uses): the Jacobian of old pixel coordinates by new ones. Returned as
    nested lists."""
    import numpy as np

    grid = np.stack(np.meshgrid(np.arange(3.0), np.arange(3.0), indexing="ij"), -1)  # old (y, x) per pixel
    turned = np.rot90(grid, k, axes=(0, 1))
    turned = turned[:, ::-1] if flip else turned
    # Columns: the old coordinates' change per step of the new row index, and of the new column index.
    return np.stack([turned[1, 0] - turned[0, 0], turned[0, 1] - turned[0, 0]], axis=1).tolist()


def _scaled_raw(model, images: tf.Tensor, stride: int, scale: float) -> tf.Tensor:
    """The raw output for the images resized by `scale` (bilinear), resized back to their size.
    A flux keeps its unit length under resizing, so fluxes of several scales can be averaged."""
    if scale == 1.0:
        return _natural_raw(model, images, stride)
    size = tf.shape(images)[1:3]
    scaled = tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32)
    raw = _natural_raw(model, tf.image.resize(images, tf.maximum(scaled, 1)), stride)
    return tf.image.resize(raw, size)


def natural_raw_outputs(model, images: tf.Tensor, stride: int, tta: bool = False,
                        scales: tuple[float, ...] = (1.0,)) -> tf.Tensor:
    """A DeepFlux model's raw output (flux or probability) for RGB images `[N, H, W, 3]` of any
    H, W: padded to `stride`, run, cropped back, float32.

    With `tta`, the model runs on the 8 D4 transforms of the images; each output is turned
    back, a flux's vectors are turned back too (`d4_vector_map`), and the 8 are averaged
    (test-time augmentation, 8× the compute; where the 8 directions disagree the mean flux is
    shorter, so λ should be chosen with it: `eval.tta`).

    With several `scales`, the model (with TTA if asked) also runs on the images resized by
    each (bilinear, builtin RESIZE_BILINEAR in TFLite), its outputs are resized back and the
    scales' outputs averaged (`eval.scales`; the DeepFlux paper augments training with scales
    0.8 / 1 / 1.2). Each scale s costs s² of one pass.
    """
    scales = tuple(float(s) for s in scales) or (1.0,)
    if tta or len(scales) > 1:
        model = traced_once(model)

    def one_scale(scale):
        if not tta:
            return _scaled_raw(model, images, stride, scale)
        return d4_average(lambda x: _scaled_raw(model, x, stride, scale), images, vectors=True)

    total = one_scale(scales[0])
    for scale in scales[1:]:
        total = total + one_scale(scale)
    return total / float(len(scales)) if len(scales) > 1 else total


def skeletons_from_outputs(raw: tf.Tensor, threshold: float | tf.Tensor, output: str = "flux", k1: int = 3,
                           k2: int = 4) -> dict[str, tf.Tensor]:
    """The post-processing of `detect_skeletons` on a model's raw output."""
    from keras_skel.ops.flux import flux_to_skeleton
    from keras_skel.ops.thinning import thin

    if output == "binary":
        return {"skeleton": probability_to_skeleton(raw, threshold), "probability": raw}
    recovered, confidence = flux_to_skeleton(raw, threshold, k1, k2)
    skeleton = thin(recovered)
    confidence = confidence * tf.cast(skeleton, tf.float32)
    return {"skeleton": skeleton, "flux": raw, "confidence": confidence}


def detect_skeletons(model, images: tf.Tensor, stride: int, threshold: float, output: str = "flux",
                     k1: int = 3, k2: int = 4, tta: bool = False,
                     scales: tuple[float, ...] = (1.0,)) -> dict[str, tf.Tensor]:
    """Object skeletons of RGB images `[N, H, W, 3]` (0..1, any H, W) with a DeepFlux model.

    `output` `flux`: the model's context flux goes through Algorithm 1 (`ops.flux_to_skeleton`,
    magnitude threshold `threshold` = λ, disks k1, k2), the recovered skeleton is thinned to
    1 px (`ops.thin`: the benchmarks thin every prediction before matching, and a thick one
    would be scored as many extra pixels); returns `skeleton` uint8 `[N, H, W, 1]`, `flux`
    float32 `[N, H, W, 2]` (dy, dx) and `confidence` float32 `[N, H, W, 1]` (`(v_max −
    |F|) / v_max` on the skeleton, 0 elsewhere). `output` `binary` (the classification
    baseline): `skeleton` (probability thresholded at `threshold`, thinned) and `probability`.
    `tta`: D4 test-time augmentation of the network; `scales`: multi-scale averaging
    (`natural_raw_outputs`).
    """
    return skeletons_from_outputs(natural_raw_outputs(model, images, stride, tta, scales), threshold, output, k1, k2)


def decode_rgb_png(image_bytes: tf.Tensor) -> tf.Tensor:
    """PNG/JPEG/BMP/GIF bytes → float32 `[H, W, 3]` RGB in 0..1 (grey repeated, alpha dropped,
    16-bit scaled by its range)."""
    image = tf.io.decode_image(image_bytes, channels=0, dtype=tf.uint16, expand_animations=False)
    image = tf.cast(image, tf.float32) / 65535.0
    channels = tf.shape(image)[-1]
    rgb = tf.switch_case(
        tf.clip_by_value(channels, 1, 4) - 1,
        [
            lambda: tf.repeat(image[..., :1], 3, axis=-1),
            lambda: tf.repeat(image[..., :1], 3, axis=-1),
            lambda: image[..., :3],
            lambda: image[..., :3],
        ],
    )
    rgb.set_shape([None, None, 3])
    return rgb


def make_natural_png_fn(model, stride: int, threshold: float, output: str = "flux", k1: int = 3, k2: int = 4,
                        tta: bool = False, scales: tuple[float, ...] = (1.0,)):
    """`image_bytes` string `[N]` → `skeleton_png_bytes` string `[N]` for a DeepFlux model."""

    def one(image_bytes):
        rgb = decode_rgb_png(image_bytes)
        out = detect_skeletons(model, tf.expand_dims(rgb, 0), stride, threshold, output, k1, k2, tta, scales)
        return tf.io.encode_png(out["skeleton"][0] * tf.constant(255, tf.uint8))

    def png_fn(image_bytes):
        encoded = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {"skeleton_png_bytes": encoded}

    return png_fn


def skeletal_outputs(model, images: tf.Tensor, image_size: int, point_labels, threshold: float | None = None
                     ) -> dict[str, tf.Tensor]:
    """A SkeletonNet's outputs for RGB images `[N, H, W, 3]` (0..1, any H, W; resized to the
    model's `image_size`² with antialiasing — the model was trained on square renderings):
    `points` float32 `[N, P, 3]` (unit cube, curve points then sheet points), `point_labels`
    int32 `[N, P]` (`point_labels`, the constant label of each output point: 0 curve, 1 sheet,
    -1 unknown), and for a refining model `volume` float32 `[N, r, r, r]` (probability of the
    skeletal volume) and `volume_mask` uint8 `[N, r, r, r]` (`volume ≥ threshold`)."""
    images = tf.image.resize(tf.cast(images, tf.float32), (image_size, image_size), antialias=True)
    out = model(tf.clip_by_value(images, 0.0, 1.0), training=False)
    points = tf.concat([out["curve"], out["sheet"]], axis=1) if "curve" in out else out["points"]
    points = tf.cast(points, tf.float32)
    labels = tf.constant(point_labels, tf.int32)
    result = {"points": points, "point_labels": tf.tile(labels[None], [tf.shape(points)[0], 1])}
    if "volume" in out:
        volume = tf.cast(out["volume"][..., 0], tf.float32)
        result.update(volume=volume, volume_mask=tf.cast(volume >= threshold, tf.uint8))
    return result


def segment_images(model, images: tf.Tensor, stride: int) -> dict[str, tf.Tensor]:
    """A thin-structure model on grey images `[N, H, W, 1]` or volumes `[N, D, H, W, 1]`
    (values 0..1, any size: padded to `stride` and cropped back).

    Returns:
        `labels` uint8 `[N, ..., 1]` (0 = background, 1..K: the 0.5 threshold of a one-channel
        sigmoid model, the argmax of a softmax one whose channel 0 is the background) and
        `probability` float32 `[N, ..., C]`, as `segmentation.ThinSegmenter` computes them.
    """
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    spatial = images.shape.rank - 2
    probability = tf.cast(model(pad_to_multiple(images, stride), training=False), tf.float32)
    channels = probability.shape[-1]
    probability = tf.slice(probability, tf.zeros([spatial + 2], tf.int32),
                           tf.concat([shape[:-1], [-1]], axis=0))
    probability.set_shape([None] * (spatial + 1) + [channels])
    if channels == 1:
        labels = tf.cast(probability >= 0.5, tf.uint8)
    else:
        labels = tf.cast(tf.argmax(probability, axis=-1, output_type=tf.int32), tf.uint8)[..., None]
    return {"labels": labels, "probability": probability}


def make_thin_png_fn(model, stride: int):
    """`image_bytes` string `[N]` → `labels_png_bytes` string `[N]` (8-bit PNGs, value = class;
    each image its own size) for a 2-D thin-structure model."""

    def one(image_bytes):
        grey = decode_grey_image(image_bytes)
        return tf.io.encode_png(segment_images(model, grey[None], stride)["labels"][0])

    def png_fn(image_bytes):
        encoded = tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {"labels_png_bytes": encoded}

    return png_fn
