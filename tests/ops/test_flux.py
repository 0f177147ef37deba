"""Context flux: the ground truth (DeepFlux eq. 1) and skeleton recovery (Algorithm 1) against a
literal NumPy implementation of Algorithm 1."""

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage as ndi
from skimage.morphology import disk

from keras_skel.data.synthetic import make_shape_sample
from keras_skel.data.targets import flux_target
from keras_skel.ops.flux import NEIGHBOUR_OFFSETS, flux_to_skeleton


def reference_recovery(flux: np.ndarray, lam: float = 0.4, k1: int = 3, k2: int = 4):
    """Algorithm 1 as written, pixel by pixel: angle binned to the nearest of 8 neighbours
    (atan2, float64), outside the image = magnitude 0, then dilation δ_k1 and erosion ε_k2 with
    disks (scipy, outside = background)."""
    h, w, _ = flux.shape
    mag = np.hypot(flux[..., 0].astype(np.float64), flux[..., 1].astype(np.float64))
    ending = np.zeros((h, w), bool)
    for r in range(h):
        for c in range(w):
            if not mag[r, c] > lam:
                continue
            angle = math.atan2(float(flux[r, c, 0]), float(flux[r, c, 1]))
            oy, ox = NEIGHBOUR_OFFSETS[int(math.floor(angle / (math.pi / 4) + 0.5)) % 8]
            rr, cc = r + oy, c + ox
            neighbour = mag[rr, cc] if 0 <= rr < h and 0 <= cc < w else 0.0
            ending[r, c] = neighbour <= lam
    skeleton = ndi.binary_erosion(ndi.binary_dilation(ending, structure=disk(k1)), structure=disk(k2))
    vmax = mag.max()
    confidence = np.where(skeleton, (vmax - mag) / vmax, 0.0) if vmax > 0 else np.zeros((h, w))
    return skeleton, confidence


def _skeletons():
    out = []
    for index in range(4):
        _, skeleton = make_shape_sample(11, index, (64, 64), noise=0.0)
        out.append(skeleton.astype(bool))
    return out


@pytest.mark.parametrize("index", range(4))
def test_recovery_matches_the_reference_on_ground_truth_flux(index):
    flux = flux_target(_skeletons()[index])
    got, conf = flux_to_skeleton(flux)
    ref, ref_conf = reference_recovery(flux)
    np.testing.assert_array_equal(got.numpy()[..., 0], ref)
    np.testing.assert_allclose(conf.numpy()[..., 0], ref_conf, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lam,k1,k2", [(0.4, 3, 4), (0.25, 1, 2)])
def test_recovery_matches_the_reference_on_noisy_predictions(seed, lam, k1, k2):
    # A predicted flux: the ground truth of a shape, blurred, scaled and with noise.
    rng = np.random.default_rng(seed)
    flux = flux_target(_skeletons()[seed])
    flux = ndi.gaussian_filter(flux, (1.0, 1.0, 0)) * 1.3 + rng.normal(0, 0.15, flux.shape)
    flux = flux.astype(np.float32)
    got, conf = flux_to_skeleton(flux, lam, k1, k2)
    ref, ref_conf = reference_recovery(flux, lam, k1, k2)
    np.testing.assert_array_equal(got.numpy()[..., 0], ref)
    np.testing.assert_allclose(conf.numpy()[..., 0], ref_conf, atol=1e-5)


def test_batches_equal_single_images_and_border_counts_as_zero():
    flux = np.stack([flux_target(s) for s in _skeletons()[:2]])
    batch, _ = flux_to_skeleton(flux)
    for i in range(2):
        np.testing.assert_array_equal(batch.numpy()[i], flux_to_skeleton(flux[i])[0].numpy())
    # Flux pointing out of the image at the border: the border pixel is an ending point.
    edge = np.zeros((9, 9, 2), np.float32)
    edge[4, 8] = (0.0, 1.0)
    got, _ = flux_to_skeleton(edge, k1=0, k2=0)
    assert got.numpy()[..., 0].sum() == 1 and got.numpy()[4, 8, 0] == 1


def test_zero_flux_gives_nothing_and_bad_shapes_raise():
    skeleton, confidence = flux_to_skeleton(np.zeros((1, 16, 16, 2), np.float32))
    assert skeleton.shape == (1, 16, 16, 1) and skeleton.dtype == tf.uint8
    assert skeleton.numpy().sum() == 0 and confidence.numpy().sum() == 0
    with pytest.raises(ValueError, match="2\\]"):
        flux_to_skeleton(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="2\\]"):
        flux_to_skeleton(np.zeros((16, 2), np.float32))


def test_converts_to_tflite_builtins_and_stays_exact():
    from ai_edge_litert.interpreter import Interpreter

    flux = np.stack([flux_target(s) for s in _skeletons()[:2]]).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([2, 64, 64, 2], tf.float32)])
    def recover(f):
        return flux_to_skeleton(f)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([recover.get_concrete_function()], recover)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], flux)
    interpreter.invoke()
    outputs = {d["dtype"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    expected, confidence = flux_to_skeleton(flux)
    np.testing.assert_array_equal(outputs[np.uint8], expected.numpy())
    np.testing.assert_allclose(outputs[np.float32], confidence.numpy(), atol=1e-6)


def test_flux_target_hand_case_and_invariants():
    skel = np.zeros((7, 7), bool)
    skel[3, 3] = True
    flux = flux_target(skel, radius=2)
    assert flux[1, 3].tolist() == [1.0, 0.0]  # two rows above: points down
    np.testing.assert_allclose(flux[2, 2], [math.sqrt(0.5), math.sqrt(0.5)], rtol=1e-6)  # diagonal
    assert flux[3, 3].tolist() == [0.0, 0.0] and flux[0, 0].tolist() == [0.0, 0.0]  # skeleton, background
    # Invariants on a real skeleton: the context is the disk dilation minus the skeleton, its
    # vectors are unit, and each points at a skeleton pixel at the EDT distance.
    skel = _skeletons()[1]
    flux = flux_target(skel, radius=7)
    mag = np.hypot(flux[..., 0], flux[..., 1])
    context = ndi.binary_dilation(skel, structure=disk(7)) & ~skel
    np.testing.assert_array_equal(mag > 0, context)
    np.testing.assert_allclose(mag[context], 1.0, rtol=1e-6)
    dist = ndi.distance_transform_edt(~skel)
    rows, cols = np.nonzero(context)
    for r, c in zip(rows[::37], cols[::37]):
        d = dist[r, c]
        tr, tc = np.rint([r + flux[r, c, 0] * d, c + flux[r, c, 1] * d]).astype(int)
        assert skel[tr, tc]
    with pytest.raises(ValueError):
        flux_target(np.zeros(5))
    assert flux_target(np.zeros((4, 4))).sum() == 0
