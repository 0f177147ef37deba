"""Loss math as pure `keras.ops` functions (the Loss classes and metrics reuse these).

Each function maps `y_true`, `y_pred` of shape `[N, ...spatial, C]` (probabilities in 0..1) to
a per-sample value of shape `[N]`, averaged over all non-batch axes.
"""

from __future__ import annotations

from keras import ops

from keras_skel.ops.soft_skeleton import soft_skeleton

__all__ = [
    "weighted_focal",
    "soft_dice",
    "focal_dice",
    "split_thin_target",
    "foreground",
    "class_dice",
    "cross_entropy",
    "skeleton_recall",
    "soft_cldice",
    "thin_segmentation",
    "balanced_flux_l2",
    "chamfer_distance",
    "laplacian_smoothness",
]


def _sample_axes(x) -> list[int]:
    return list(range(1, len(x.shape)))


def weighted_focal(y_true, y_pred, w_pos: float = 50.0, w_neg: float = 0.75, gamma: float = 2.0,
                   epsilon: float = 1e-7):
    """Weighted focal loss, mean over pixels.

    `FL = −w_pos·y·(1−p)^γ·log p − w_neg·(1−y)·p^γ·log(1−p)`: the focal loss of Lin et al.
    with separate class weights, as Panichev & Voloshyna (CVPRW 2019) use for the rare
    skeleton class (their best: w_pos 50, w_neg 0.75, γ 2).

    Args:
        y_true: targets in {0, 1} (soft targets are accepted).
        y_pred: probabilities.
        w_pos: weight of positive (skeleton) pixels.
        w_neg: weight of negative pixels.
        gamma: focusing parameter.
        epsilon: probabilities are clipped to [ε, 1−ε] before the logarithms.

    Returns:
        Per-sample loss, shape `[N]`.

    Example:
        >>> float(weighted_focal(ops.ones((1, 1)), ops.full((1, 1), 0.5))[0])  # 50·0.25·ln 2
        8.664339...
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    pos = -w_pos * y_true * ops.power(1.0 - p, gamma) * ops.log(p)
    neg = -w_neg * (1.0 - y_true) * ops.power(p, gamma) * ops.log(1.0 - p)
    return ops.mean(pos + neg, axis=_sample_axes(y_pred))


def soft_dice(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice loss `1 − (2·Σ y·p + s) / (Σ y + Σ p + s)` per sample.

    Args:
        y_true: targets in {0, 1}.
        y_pred: probabilities.
        smooth: the additive smoothing term s (ε = 1 by default), which makes an empty
            target with an empty prediction a loss of 0.

    Returns:
        Per-sample loss, shape `[N]`.

    Example:
        >>> float(soft_dice(ops.ones((1, 2)), ops.ones((1, 2)))[0])
        0.0
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = _sample_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def focal_dice(y_true, y_pred, focal_weight: float = 1.0, dice_weight: float = 1.0,
               w_pos: float = 50.0, w_neg: float = 0.75, gamma: float = 2.0, smooth: float = 1.0):
    """`focal_weight · weighted_focal + dice_weight · soft_dice`, per sample."""
    return focal_weight * weighted_focal(y_true, y_pred, w_pos, w_neg, gamma) + dice_weight * soft_dice(
        y_true, y_pred, smooth
    )


# --- Thin-structure segmentation (Skeleton Recall, clDice) -------------------------------------
#
# Channel convention: a prediction with one channel is a binary (sigmoid) segmentation; one with
# C > 1 channels is a softmax over C classes whose channel 0 is the background. Region and
# topology terms use the foreground channels only (the background's skeleton means nothing);
# cross-entropy uses all. `y_true` holds the one-hot segmentation in its first C channels and,
# when the Skeleton Recall loss needs it, the tubed skeleton (`data.targets.tubed_skeleton`,
# one-hot the same way) in the next C: `[..., C]` or `[..., 2C]`.


def split_thin_target(y_true, channels: int, need_tube: bool = False):
    """Splits `y_true` into `(segmentation, tubed_skeleton or None)` for `channels` outputs.

    Raises:
        ValueError: if `y_true` has neither `channels` nor `2·channels` channels, or the tube
            is needed and absent.
    """
    got = y_true.shape[-1]
    if got == 2 * channels:
        return y_true[..., :channels], y_true[..., channels:]
    if got == channels and not need_tube:
        return y_true, None
    want = f"{2 * channels}" if need_tube else f"{channels} or {2 * channels}"
    raise ValueError(
        f"y_true has {got} channels for a {channels}-channel prediction; expected {want} "
        "(the one-hot segmentation, then the tubed skeleton that the Skeleton Recall loss needs; "
        "the thin-task input pipeline makes it when the loss asks for it)"
    )


def foreground(x):
    """The foreground channels: the one channel of a binary map, channels 1.. of a softmax."""
    return x if x.shape[-1] == 1 else x[..., 1:]


def _per_class_axes(x) -> list[int]:
    # Spatial axes only: a value per sample and class.
    return list(range(1, len(x.shape) - 1))


def class_dice(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice loss per sample, averaged over the foreground classes.

    `1 − mean_k (2·Σ y_k·p_k + s) / (Σ y_k + Σ p_k + s)` over the foreground channels.

    Args:
        y_true: one-hot segmentation `[N, ...spatial, C]`.
        y_pred: probabilities, same shape.
        smooth: additive smoothing s.

    Returns:
        Per-sample loss, shape `[N]`.
    """
    y_true = foreground(ops.cast(y_true, y_pred.dtype))
    y_pred = foreground(y_pred)
    axes = _per_class_axes(y_pred)
    intersection = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - ops.mean((2.0 * intersection + smooth) / (total + smooth), axis=-1)


def cross_entropy(y_true, y_pred, epsilon: float = 1e-7):
    """Pixel-mean cross-entropy: binary for one channel, categorical over C channels.

    Returns:
        Per-sample loss, shape `[N]`.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    if y_pred.shape[-1] == 1:
        pixel = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))[..., 0]
    else:
        pixel = -ops.sum(y_true * ops.log(p), axis=-1)
    return ops.mean(pixel, axis=list(range(1, len(pixel.shape))))


def skeleton_recall(tube, y_pred, epsilon: float = 1.0):
    """Soft Skeleton Recall loss per sample: minus the mean recall of the tubed skeleton.

    `L = −mean_k (Σ p_k·S_k + ε) / (Σ S_k + ε)` over the foreground classes k, with `S_k` the
    tubed skeleton of class k (made on the CPU by `data.targets.tubed_skeleton`) and `p_k` the
    predicted probabilities. A class without skeleton pixels contributes recall 1 (no
    gradient). The minimum is −1, when every tube pixel is predicted with probability 1.

    Args:
        tube: one-hot tubed skeleton `[N, ...spatial, C]`.
        y_pred: probabilities, same shape.
        epsilon: the ε of the ratio (1 as in the authors' nnU-Net code).

    Returns:
        Per-sample loss in [−1, 0], shape `[N]`.

    Example:
        >>> tube = ops.convert_to_tensor([[[1.0], [1.0], [0.0]]])
        >>> float(skeleton_recall(tube, ops.convert_to_tensor([[[0.5], [1.0], [1.0]]]), 1.0)[0])
        -0.8333...

    Reference:
        Kirchhoff et al., "Skeleton Recall Loss for Connectivity Conserving and Resource
        Efficient Segmentation of Thin Tubular Structures", ECCV 2024.
    """
    tube = foreground(ops.cast(tube, y_pred.dtype))
    y_pred = foreground(y_pred)
    axes = _per_class_axes(y_pred)
    recall = (ops.sum(tube * y_pred, axis=axes) + epsilon) / (ops.sum(tube, axis=axes) + epsilon)
    return -ops.mean(recall, axis=-1)


def soft_cldice(y_true, y_pred, iterations: int = 10, epsilon: float = 1.0):
    """Soft clDice loss per sample, averaged over the foreground classes.

    With soft skeletons `S_P = soft_skeleton(p)` and `S_L = soft_skeleton(y)`:
    `Tprec = (Σ S_P·y + ε)/(Σ S_P + ε)`, `Tsens = (Σ S_L·p + ε)/(Σ S_L + ε)`,
    `L = 1 − 2·Tprec·Tsens / (Tprec + Tsens)`.

    Args:
        y_true: one-hot segmentation `[N, ...spatial, C]`.
        y_pred: probabilities, same shape.
        iterations: soft-skeleton iterations (`ops.soft_skeleton.soft_skeleton`).
        epsilon: smoothing of both ratios.

    Returns:
        Per-sample loss in [0, 1], shape `[N]`.

    Reference:
        Shit et al., "clDice — a Novel Topology-Preserving Loss Function for Tubular Structure
        Segmentation", CVPR 2021.
    """
    y_true = foreground(ops.cast(y_true, y_pred.dtype))
    y_pred = foreground(y_pred)
    axes = _per_class_axes(y_pred)
    skel_pred = soft_skeleton(y_pred, iterations)
    skel_true = soft_skeleton(y_true, iterations)
    tprec = (ops.sum(skel_pred * y_true, axis=axes) + epsilon) / (ops.sum(skel_pred, axis=axes) + epsilon)
    tsens = (ops.sum(skel_true * y_pred, axis=axes) + epsilon) / (ops.sum(skel_true, axis=axes) + epsilon)
    return 1.0 - ops.mean(2.0 * tprec * tsens / (tprec + tsens), axis=-1)


def thin_segmentation(y_true, y_pred, dice_weight: float = 1.0, ce_weight: float = 1.0,
                      recall_weight: float = 0.0, cldice_weight: float = 0.0, cldice_iterations: int = 10,
                      smooth: float = 1.0):
    """Weighted sum of Dice, cross-entropy, Skeleton Recall and clDice, per sample.

    Terms with weight 0 are not computed (clDice's soft skeleton is never built unless asked).

    Args:
        y_true: `[..., C]` one-hot segmentation, or `[..., 2C]` with the tubed skeleton after it
            (required when `recall_weight` > 0).
        y_pred: probabilities `[N, ...spatial, C]` (sigmoid for C = 1, softmax otherwise).
        dice_weight, ce_weight, recall_weight, cldice_weight: term weights.
        cldice_iterations: soft-skeleton iterations of the clDice term.
        smooth: the smoothing ε of the Dice, recall and clDice ratios.

    Returns:
        Per-sample loss, shape `[N]`.
    """
    y_pred = ops.cast(y_pred, "float32")
    seg, tube = split_thin_target(ops.cast(y_true, "float32"), y_pred.shape[-1], need_tube=recall_weight > 0)
    total = 0.0
    if dice_weight:
        total = total + dice_weight * class_dice(seg, y_pred, smooth)
    if ce_weight:
        total = total + ce_weight * cross_entropy(seg, y_pred)
    if recall_weight:
        total = total + recall_weight * skeleton_recall(tube, y_pred, smooth)
    if cldice_weight:
        total = total + cldice_weight * soft_cldice(seg, y_pred, cldice_iterations, smooth)
    if isinstance(total, float):
        raise ValueError("thin_segmentation needs at least one non-zero weight")
    return total


def balanced_flux_l2(y_true, y_pred):
    """DeepFlux's class-balanced L2 loss on the context flux (Wang et al., CVPR 2019, eq. 2–3).

    `L = Σ_p w(p)·‖F(p) − F̂(p)‖²` per image, with `w(p) = |Rb| / (|Rc| + |Rb| + |Rs|)` on
    context and skeleton pixels and `(|Rc| + |Rs|) / (|Rc| + |Rb| + |Rs|)` on background
    pixels: the rare context and skeleton regions weigh as much as the background.

    Args:
        y_true: `[N, H, W, 3]`: the flux ground truth (dy, dx; `data.targets.flux_target`) and
            the skeleton mask, which tells skeleton pixels (flux 0) from background (flux 0).
        y_pred: predicted flux `[N, H, W, 2]`.

    Returns:
        Per-sample loss (a sum over pixels), shape `[N]`.

    Example:
        >>> y = np.zeros((1, 1, 4, 3), "float32"); y[0, 0, 0] = (0, 1, 0); y[0, 0, 1] = (0, 0, 1)
        >>> float(balanced_flux_l2(y, np.zeros((1, 1, 4, 2), "float32"))[0])  # 2/4 · 1 on the context pixel
        0.5
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    if y_true.shape[-1] != 3 or y_pred.shape[-1] != 2:
        raise ValueError(f"balanced_flux_l2 expects y_true [..., 3] (flux dy, dx, skeleton) and y_pred [..., 2]; "
                         f"got {tuple(y_true.shape)} and {tuple(y_pred.shape)}")
    flux, skeleton = y_true[..., :2], ops.cast(y_true[..., 2] > 0, "float32")
    context = ops.cast(ops.sum(ops.square(flux), axis=-1) > 0, "float32") * (1.0 - skeleton)
    background = 1.0 - ops.maximum(context, skeleton)
    axes = [1, 2]
    n_context, n_skeleton = ops.sum(context, axis=axes), ops.sum(skeleton, axis=axes)
    n_background = ops.sum(background, axis=axes)
    total = n_context + n_skeleton + n_background
    w_fore = ops.reshape(n_background / total, (-1, 1, 1))
    w_back = ops.reshape((n_context + n_skeleton) / total, (-1, 1, 1))
    weight = w_fore * (context + skeleton) + w_back * background
    error = ops.sum(ops.square(flux - y_pred), axis=-1)
    return ops.sum(weight * error, axis=axes)


def chamfer_distance(a, b, reduction: str = "sum"):
    """Chamfer distance between point sets (SkeletonNet, Tang et al., TPAMI, eq. 2).

    `Σ_{p∈a} min_{q∈b} ‖p − q‖² + Σ_{q∈b} min_{p∈a} ‖p − q‖²` per sample (`reduction="sum"`,
    eq. 2 as written), or each of the two sums divided by its set's size (`"mean"`, the scale
    of the CD values papers report, e.g. SkeletonNet's 1.485e-3 on ShapeNet chairs).

    Args:
        a: `[N, P, 3]` points.
        b: `[N, Q, 3]` points.
        reduction: `sum` or `mean`.

    Returns:
        `[N]`.

    Example:
        >>> a = np.array([[[0., 0, 0], [1, 0, 0]]]); b = np.array([[[0., 0, 0]]])
        >>> float(chamfer_distance(a, b)[0])  # 0 + 1 from a, 0 from b
        1.0
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be sum or mean; got {reduction!r}")
    a = ops.convert_to_tensor(a)
    b = ops.cast(ops.convert_to_tensor(b), a.dtype)
    d2 = ops.sum(ops.square(a[:, :, None, :] - b[:, None, :, :]), axis=-1)  # [N, P, Q]
    to_b, to_a = ops.min(d2, axis=2), ops.min(d2, axis=1)
    if reduction == "mean":
        return ops.mean(to_b, axis=1) + ops.mean(to_a, axis=1)
    return ops.sum(to_b, axis=1) + ops.sum(to_a, axis=1)


def laplacian_smoothness(points, neighbours, reduction: str = "sum"):
    """Laplacian smoothness of deformed primitive samples (SkeletonNet eq. 3):
    `Σ_p ‖p − mean_{p'∈N(p)} p'‖²`, N(p) the points whose pre-images are connected to p's on
    their line segment or unit square.

    Args:
        points: `[N, P, 3]`.
        neighbours: int `[P, K]` indices into the P points, -1 for "no neighbour" (a fixed
            table: `models.skeletonnet.line_neighbours` / `square_neighbours`).
        reduction: `sum` (eq. 3) or `mean` over the points.

    Returns:
        `[N]`.

    Example:
        >>> pts = np.array([[[0., 0, 0], [1, 1, 0], [2, 0, 0]]])
        >>> table = np.array([[1, -1], [0, 2], [1, -1]])
        >>> float(laplacian_smoothness(pts, table)[0])  # ends: 2 each; middle: 1
        5.0
    """
    points = ops.convert_to_tensor(points)
    neighbours = ops.convert_to_tensor(neighbours, "int32")
    valid = ops.cast(neighbours >= 0, points.dtype)  # [P, K]
    gathered = ops.take(points, ops.maximum(neighbours, 0), axis=1)  # [N, P, K, 3]
    count = ops.sum(valid, axis=1)  # [P]
    mean = ops.sum(gathered * valid[None, :, :, None], axis=2) / ops.maximum(count, 1.0)[None, :, None]
    error = ops.sum(ops.square(points - mean), axis=-1) * ops.cast(count > 0, points.dtype)[None]
    return ops.mean(error, axis=1) if reduction == "mean" else ops.sum(error, axis=1)
