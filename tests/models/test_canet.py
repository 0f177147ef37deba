import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_skel.inference import infer_stride
from keras_skel.layers.context_attention import ContextAttention
from keras_skel.layers.preprocess import INPUT_KINDS
from keras_skel.models.canet import (
    build_canet,
    canet_side_factors,
    canet_stride,
    deep_supervision_targets,
    downsample_target,
    probability_model,
)
from keras_skel.registry import MODELS

TINY = dict(base_filters=4, depth=3, blocks_per_stage=1, attention_stages=(3,))


def _shapes(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, h, w, 1), "float32")
    for image in x:
        top, left = rng.integers(1, max(2, h // 3)), rng.integers(1, max(2, w // 3))
        image[top:h - top, left:w - left] = 1
        image[rng.random((h, w)) < 0.02] = 0
    return x


@pytest.mark.parametrize("kind", list(INPUT_KINDS))
def test_builds_for_each_input_kind(kind):
    model = build_canet(input_kind=kind, deep_supervision=False, **TINY)
    assert model.get_layer("shape_input").output.shape[-1] == INPUT_KINDS[kind]
    assert model.input_shape == (None, None, None, 1)
    out = model(_shapes(1, 16, 24))
    assert tuple(out.shape) == (1, 16, 24, 1) and np.all((0 <= out) & (out <= 1))


@pytest.mark.parametrize("stages", [(), (1,), (1, 2, 3), (2,)])
def test_attention_stage_configs(stages):
    model = build_canet(base_filters=4, depth=3, blocks_per_stage=1, attention_stages=stages,
                        deep_supervision=False)
    found = sorted(l.name for l in model.layers if isinstance(l, ContextAttention))
    assert found == [f"enc{k}_attention" for k in sorted(stages)]
    assert tuple(model(np.zeros((1, 8, 8, 1), "float32")).shape) == (1, 8, 8, 1)


@pytest.mark.parametrize("bad", [dict(attention_stages=(0,)), dict(attention_stages=(4,)), dict(depth=0),
                                 dict(input_kind="sdf"), dict(input_channels=3), dict(blocks_per_stage=0)])
def test_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        build_canet(**{**TINY, **bad})


def test_paper_structure_and_shapes_at_64_and_96x128():
    model = build_canet(base_filters=4)  # paper layout: depth 5, 3 blocks, attention 3-5
    names = {l.name for l in model.layers}
    assert {f"enc{k}_res{j}" for k in range(1, 6) for j in (1, 2, 3)} <= names
    assert {f"dec{k}_res{j}" for k in range(1, 6) for j in (1, 2, 3)} <= names
    assert {"enc3_attention", "enc4_attention", "enc5_attention"} <= names and "enc2_attention" not in names
    assert infer_stride(model) == canet_stride(5) == 32
    assert infer_stride(probability_model(model)) == 32
    assert list(model.output) == ["probability", "side_1", "side_2", "side_3", "side_4"]
    for h, w in [(64, 64), (96, 128)]:
        out = model(np.zeros((1, h, w, 1), "float32"))
        assert tuple(out["probability"].shape) == (1, h, w, 1)
        for name, factor in canet_side_factors(5).items():
            assert tuple(out[name].shape) == (1, h // factor, w // factor, 1)


def test_deep_supervision_off_gives_one_tensor():
    model = build_canet(deep_supervision=False, **TINY)
    assert not isinstance(model.output, dict) and model.output_shape == (None, None, None, 1)
    assert probability_model(model) is model
    assert not [l for l in model.layers if l.name.startswith("side_")]


def test_mixed_precision_outputs_are_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_canet(**TINY)
        assert all(t.dtype == "float32" for t in model.output.values())
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_downsample_target_keeps_thin_skeletons():
    y = np.zeros((1, 12, 12, 1), "float32")
    idx = np.arange(12)
    y[0, idx, idx, 0] = 1  # 1-px diagonal
    y[0, 5, 0:9, 0] = 1  # 1-px horizontal line
    for factor in (2, 4):
        down = downsample_target(y, factor).numpy()
        blocks = y[0, :, :, 0].reshape(12 // factor, factor, 12 // factor, factor).max(axis=(1, 3))
        np.testing.assert_array_equal(down[0, :, :, 0], blocks)
        assert np.all(np.diag(down[0, :, :, 0]) == 1)  # still connected
    single = downsample_target(y[0], 4)  # one image, as in a tf.data map
    assert tuple(single.shape) == (3, 3, 1)
    assert tuple(downsample_target(np.ones((1, 10, 7, 1), "uint8"), 4).shape) == (1, 3, 2, 1)
    assert downsample_target(y, 1) is not None and downsample_target(y, 1).shape == y.shape
    with pytest.raises(ValueError):
        downsample_target(y[0, :, :, 0], 2)


def test_registry_builds_canet_with_training_arguments():
    model = MODELS.build("canet", input_channels=1, **TINY)
    assert model.name == "canet"


def test_tiny_canet_fits_and_round_trips(tmp_path):
    model = build_canet(**TINY)
    x = _shapes(4, 16, 16)
    y = (np.random.default_rng(1).random((4, 16, 16, 1)) > 0.9).astype("float32")
    targets = deep_supervision_targets(y, depth=3)
    assert {k: tuple(v.shape) for k, v in targets.items()} == {
        "probability": (4, 16, 16, 1), "side_1": (4, 8, 8, 1), "side_2": (4, 4, 4, 1)}
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9),
                  loss={name: "binary_crossentropy" for name in model.output},
                  loss_weights={"probability": 1.0, "side_1": 0.5, "side_2": 0.5})
    ds = tf.data.Dataset.from_tensor_slices((x, y)).map(
        lambda a, b: (a, deep_supervision_targets(b, depth=3))).batch(2)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(ds, epochs=1, steps_per_epoch=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))

    model.save(tmp_path / "canet.keras")
    restored = keras.saving.load_model(tmp_path / "canet.keras")
    got, want = restored(x), model(x)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-6)
    assert infer_stride(restored) == 8


def test_export_archive_serves_dynamic_sizes(tmp_path):
    from keras_skel.export.graph import skeletonize_images

    model = probability_model(build_canet(**TINY))
    stride = canet_stride(3)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda images: skeletonize_images(model, images, 0.5, stride),
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="images")],
    )
    archive.write_out(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    serve = loaded.signatures["serving_default"]
    for n, h, w in [(2, 20, 28), (1, 16, 8)]:
        images = _shapes(n, h, w, seed=h)
        out = serve(images=tf.constant(images))
        assert out["skeleton"].dtype == tf.uint8 and tuple(out["skeleton"].shape) == (n, h, w, 1)
        want = skeletonize_images(model, tf.constant(images), 0.5, stride)["probability"]
        np.testing.assert_allclose(out["probability"].numpy(), want.numpy(), atol=1e-5)


def test_downsample_target_mean_mode_keeps_the_area_fraction():
    y = np.zeros((1, 4, 4, 1), "float32")
    y[0, :3, :2, 0] = 1
    out = downsample_target(y, 2, mode="mean")[0, :, :, 0].numpy()
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.5, 0.0]])
    assert set(deep_supervision_targets(y, 3, "mean")) == {"probability", "side_1", "side_2"}
    with pytest.raises(ValueError, match="mode"):
        downsample_target(y, 2, mode="median")


def test_input_skip_starts_from_the_input_shape():
    model = build_canet(**TINY, deep_supervision=False, input_skip=True)
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # the network's own say: none
    x = _shapes(2, 32, 32)
    p = model.predict(x, verbose=0)
    expected = 1 / (1 + np.exp(-3.0 * (2 * x - 1)))
    np.testing.assert_allclose(p, expected, atol=1e-5)


def test_plain_unet_variant_has_no_shortcuts():
    plain = build_canet(**TINY, deep_supervision=False, residual=False)
    residual = build_canet(**TINY, deep_supervision=False)
    assert all(not layer.shortcut for layer in plain.layers if hasattr(layer, "shortcut"))
    assert plain.count_params() < residual.count_params()  # no 1x1 projections
