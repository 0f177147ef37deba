import numpy as np
import pytest

from keras_skel.data.synthetic import make_shape_sample
from keras_skel.data.targets import skeleton_target
from keras_skel.inference import skeleton_from_probability


@pytest.mark.parametrize("noise", [0.0, 3.0])
def test_threshold_thin_prune_is_the_ground_truth_rule(noise):
    # A clean-shape probability through the pruning post-processing gives `skeleton_target`.
    for index in range(8):
        shape, _, clean = make_shape_sample(11, index, (96, 96), noise, noise_style="mixed", with_clean=True)
        probability = np.where(shape > 0, 0.8, 0.2).astype(np.float32)
        np.testing.assert_array_equal(skeleton_from_probability(probability, 0.5, 10), skeleton_target(shape))


def test_pruning_removes_spurs_that_plain_thinning_keeps():
    shape = np.zeros((40, 60), np.float32)
    shape[15:25, 5:55] = 1
    shape[12:15, 30:32] = 1  # a 3-px bump: its thinned spur is under 10 px
    plain = skeleton_from_probability(shape, 0.5, 0)
    pruned = skeleton_from_probability(shape, 0.5, 10)
    assert plain[8:18, 28:34].sum() > 0 and pruned[8:18, 28:34].sum() == 0
    np.testing.assert_array_equal(pruned, skeleton_target(shape))


def test_gate_keeps_the_rule_where_the_model_agrees_and_drops_the_rest():
    import scipy.ndimage as ndi
    from skimage.morphology import disk, skeletonize

    from keras_skel.data.targets import prune_terminal_branches

    for index in range(6):
        noisy, gt, clean = make_shape_sample(12, index, (96, 96), 3.0, noise_style="bumps", with_clean=True)
        # A model that sees exactly the clean skeleton: on the clean shape the gate returns the
        # ground truth; on the noisy one it equals the NumPy reference of the same rule.
        probability = gt.astype(np.float32)
        np.testing.assert_array_equal(skeleton_from_probability(probability, 0.5, 10, 2, clean), gt)
        rule = skeleton_target(noisy).astype(bool)
        band = ndi.binary_dilation(probability >= 0.5, structure=disk(2))
        expected = skeletonize(prune_terminal_branches(rule & band, 10)).astype(np.uint8)
        np.testing.assert_array_equal(skeleton_from_probability(probability, 0.5, 10, 2, noisy), expected)
    with pytest.raises(ValueError, match="input shape"):
        skeleton_from_probability(probability, 0.5, 10, 2)
