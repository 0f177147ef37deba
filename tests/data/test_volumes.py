"""Synthetic 3-D objects: primitives' meso-skeletons, labels, volumes, renderings."""

import math

import numpy as np
import pytest

from keras_skel.data.volumes import (CURVE, SHEET, VOLUME_FAMILIES, Disk, Rod, Slab, Torus, family_of_volume,
                                     make_volume_sample, pca_labels, render, skeletal_volume, voxelize)
from keras_skel.errors import ConfigError


def test_rod_skeleton_is_its_axis_curve():
    rod = Rod((0.0, -0.3, 0.1), (0.0, 0.3, 0.1), 0.05)
    points, labels = rod.skeleton(1 / 32)
    assert (labels == CURVE).all()
    np.testing.assert_allclose(points[:, [0, 2]], np.tile([0.0, 0.1], (len(points), 1)), atol=1e-12)
    assert points[:, 1].min() == pytest.approx(-0.25) and points[:, 1].max() == pytest.approx(0.25)
    assert (pca_labels(points) == CURVE).all()


def test_plate_skeleton_is_its_mid_sheet():
    plate = Slab((0.1, 0.0, -0.05), (0.3, 0.02, 0.2))
    points, labels = plate.skeleton(1 / 32)
    assert (labels == SHEET).all()
    np.testing.assert_allclose(points[:, 1], 0.0, atol=1e-12)  # at the middle of the thin dimension
    assert points[:, 0].min() == pytest.approx(0.1 - 0.28) and points[:, 2].max() == pytest.approx(-0.05 + 0.18)
    assert (pca_labels(points) == SHEET).mean() > 0.95


def test_bar_is_a_curve_and_disk_a_sheet():
    points, labels = Slab((0.0, 0.0, 0.0), (0.03, 0.3, 0.025)).skeleton(1 / 32)
    assert (labels == CURVE).all() and np.ptp(points[:, 1]) == pytest.approx(2 * (0.3 - 0.03))
    points, labels = Disk((0.0, -0.4, 0.0), (0, 1.0, 0), 0.2, 0.02).skeleton(1 / 32)
    assert (labels == SHEET).all() and np.allclose(points[:, 1], -0.4)
    assert np.hypot(points[:, 0], points[:, 2]).max() <= 0.18 + 1e-9


def test_torus_skeleton_is_a_circle():
    torus = Torus((0.0, 0.2, 0.0), (0, 1.0, 0), 0.15, 0.02)
    points, labels = torus.skeleton(1 / 32)
    assert (labels == CURVE).all()
    np.testing.assert_allclose(np.hypot(points[:, 0], points[:, 2]), 0.15, atol=1e-12)
    np.testing.assert_allclose(points[:, 1], 0.2, atol=1e-12)
    assert (pca_labels(points, k=6) == CURVE).all()


@pytest.mark.parametrize("part", [Rod((0.0, -0.2, 0.0), (0.1, 0.2, 0.0), 0.04),
                                  Slab((0.0, 0.0, 0.0), (0.2, 0.03, 0.1)),
                                  Disk((0.0, 0.0, 0.0), (0, 0, 1.0), 0.2, 0.03),
                                  Torus((0.0, 0.0, 0.0), (1.0, 0, 0), 0.2, 0.04)])
def test_surface_samples_lie_on_the_surface_and_sdf_signs(part):
    points = part.surface(np.random.default_rng(0), 500)
    np.testing.assert_allclose(part.sdf(points), 0.0, atol=1e-9)
    skeleton, _ = part.skeleton(1 / 32)
    assert (part.sdf(skeleton) < 0).all()  # the skeleton is inside
    assert part.area() > 0


def test_voxelize_counts_a_box():
    box = Slab((0.0, 0.0, 0.0), (0.25, 0.125, 0.25))
    occupancy = voxelize([box], 16)
    # Centres at (i + 0.5) / 16 - 0.5: 8 inside along x and z, 4 along y.
    assert occupancy.sum() == 8 * 4 * 8 and occupancy.dtype == np.uint8


def test_skeletal_volume_quantizes_and_dilates():
    points = np.array([[0.0, 0.0, 0.0]])
    volume = skeletal_volume(points, 8, dilation=0)
    assert volume.sum() == 1 and volume[4, 4, 4] == 1
    assert skeletal_volume(points, 8, dilation=1).sum() == 7


def test_render_hits_the_object_and_leaves_background():
    image = render([Slab((0.0, 0.0, 0.0), (0.2, 0.2, 0.2))], azimuth=0.0, elevation=0.0, size=32)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    assert np.allclose(image[0, 0], 1.0) and not np.allclose(image[16, 16], 1.0)
    side = render([Slab((0.0, 0.0, 0.0), (0.2, 0.2, 0.2))], azimuth=math.pi / 2, elevation=0.3, size=32)
    assert not np.allclose(side, image)


def test_samples_are_deterministic_and_cover_the_families():
    a = make_volume_sample(3, 4, resolution=16, image_size=24, views=2, surface_count=256)
    b = make_volume_sample(3, 4, resolution=16, image_size=24, views=2, surface_count=256)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.skeleton_points, b.skeleton_points)
    assert a.occupancy.shape == a.skeletal_volume.shape == (16, 16, 16)
    assert a.surface_points.shape == (256, 3) and np.abs(a.surface_points).max() <= 0.5
    assert sorted(family_of_volume(0, i) for i in range(3)) == sorted(VOLUME_FAMILIES)
    with pytest.raises(ConfigError, match="resolution"):
        make_volume_sample(0, 0, resolution=4)


def test_objects_fit_the_unit_cube():
    for index in range(6):
        sample = make_volume_sample(1, index, resolution=16, image_size=16, views=1, surface_count=128)
        assert np.abs(sample.skeleton_points).max() < 0.5
        assert sample.occupancy[0].sum() == sample.occupancy[-1].sum() == 0  # nothing on the x faces


def test_projection_lands_on_the_rendered_object():
    from keras_skel.data.volumes import project

    sample = make_volume_sample(0, 1, resolution=16, image_size=64, views=2, surface_count=64)
    for image, (azimuth, elevation) in zip(sample.images, sample.viewpoints):
        xy = np.round(project(sample.skeleton_points, azimuth, elevation, 64)).astype(int)
        assert (xy >= 0).all() and (xy < 64).all()
        on_object = ~np.all(np.isclose(image[xy[:, 1], xy[:, 0]], 1.0), axis=-1)
        assert on_object.mean() > 0.9  # skeletons are inside the object; a few sit behind thin parts' edges
    assert np.allclose(project(np.zeros((1, 3)), 0.3, 0.2, 64), 31.5)
