"""The published numbers of the AMFL paper (Mei et al.), for printing beside ours.

Copied as data from the paper's Tables I-V (``../shared/paper/amfl-paper.txt``); every
table we write labels these rows "paper". Scores are in the order of
``amfl.metrics.METRIC_NAMES``: acc, dice, iou, recall, precision, fnr, fpr, hausdorff.
"""

from __future__ import annotations

from amfl.metrics import METRIC_NAMES


def _rows(table: dict[str, tuple[float, ...]]) -> dict[str, dict[str, float]]:
    return {name: dict(zip(METRIC_NAMES, scores, strict=True)) for name, scores in table.items()}


#: Table II: the ten baselines (trained with CE) and AMFL with Lovasz-Softmax.
TABLE_II = _rows({
    "ENet": (99.8707, 94.5821, 90.7770, 94.5365, 95.0898, 5.4635, 0.3791, 1.5861),
    "BiSeNetV1": (99.7361, 90.9037, 85.1075, 89.3718, 93.2404, 10.6282, 1.4966, 1.9584),
    "BiSeNetV2": (99.8055, 93.2973, 88.8068, 93.1980, 93.8226, 6.8020, 0.6947, 1.8145),
    "DeepLabV3+": (99.9048, 95.8592, 92.8454, 96.0429, 96.0126, 3.9571, 0.2623, 1.4886),
    "FastFCN": (99.9170, 96.4061, 93.6931, 96.6915, 96.3868, 3.3085, 0.2017, 1.4452),
    "UNet": (99.9684, 97.8970, 96.3765, 97.9654, 98.0156, 2.0346, 0.0331, 1.0230),
    "R2UNet": (99.8659, 95.1638, 92.7348, 96.0719, 95.1458, 3.9281, 0.1046, 1.2535),
    "AttUNet": (99.9625, 97.678, 96.0418, 97.7765, 97.8637, 2.2235, 0.0395, 1.0528),
    "R2AttUNet": (99.9122, 95.7752, 93.6760, 96.6767, 95.6791, 3.3233, 0.0792, 1.1688),
    "NestedUNet": (99.9625, 97.967, 96.6473, 98.0266, 98.0809, 1.9734, 0.0341, 0.9518),
    "AMFL (Lovasz-Softmax)": (99.9776, 98.6048, 97.5974, 98.655, 98.7267, 1.345, 0.0227, 0.8252),
})

#: Table I: AMFL (with GAN, Lovasz-Softmax) with other generators.
TABLE_I = _rows({
    "DeepLabV3+": (99.9149, 96.4414, 93.8028, 96.2027, 96.9309, 3.7973, 0.3094, 1.4366),
    "FastFCN": (99.9130, 96.5195, 93.8791, 96.5454, 96.7388, 3.4546, 0.2450, 1.4376),
    "UNet": (99.9727, 98.2346, 96.9548, 98.2836, 98.3897, 1.7164, 0.0314, 0.9524),
    "R2UNet": (99.9694, 98.2646, 97.0231, 98.6001, 98.1223, 1.3999, 0.0348, 0.9423),
    "AttUNet": (99.971, 98.2409, 96.9582, 98.2301, 98.4575, 1.7699, 0.0304, 0.9515),
    "R2AttUNet": (99.9585, 97.8592, 96.4989, 98.1673, 97.7693, 1.8327, 0.0399, 1.0054),
    "NestedUNet": (99.9776, 98.6048, 97.5974, 98.6550, 98.7267, 1.3450, 0.0227, 0.8252),
})

#: Table III: AMFL's IoU of classes 1, 2, 3 and its accuracy.
TABLE_III_AMFL = {"iou_class_1": 97.09, "iou_class_2": 98.93, "iou_class_3": 94.37, "acc": 99.98}

#: Table IV: parameters (millions), GPU and CPU milliseconds per 128 x 128 image.
TABLE_IV = {
    "ENet": (0.35, 63, 38), "BiSeNetV1": (12.43, 19, 43), "BiSeNetV2": (2.85, 34, 34),
    "DeepLabV3+": (59.46, 72, 190), "FastFCN": (104.3, 78, 380), "UNet": (34.53, 19, 274),
    "R2UNet": (39.09, 61, 715), "AttUNet": (34.88, 27, 285), "R2AttUNet": (39.44, 71, 734),
    "NestedUNet": (36.63, 27, 568), "AMFL": (36.63, 27, 568),
}

#: Table V: NestedUNet with each loss, without (False) and with (True) the GAN.
TABLE_V = {
    (loss, gan): dict(zip(METRIC_NAMES, scores, strict=True))
    for (loss, gan), scores in {
        ("dice", False): (99.9457, 97.3146, 95.596, 97.4631, 97.3846, 2.5369, 0.0701, 1.1617),
        ("weighted_dice", False): (99.9434, 97.1637, 95.2851, 97.3318, 97.3021, 2.6682, 0.0929, 1.2242),
        ("ce", False): (99.9625, 97.9670, 96.6473, 98.0266, 98.0809, 1.9734, 0.0341, 0.9518),
        ("weighted_ce", False): (99.9529, 97.7494, 96.063, 98.4318, 97.3030, 1.5682, 0.0256, 1.2219),
        ("lovasz", False): (99.9714, 98.2898, 97.1699, 98.3459, 98.3993, 1.6541, 0.0326, 0.9036),
        ("dice", True): (99.9670, 98.2422, 97.0882, 98.228, 98.4479, 1.772, 0.0335, 0.9166),
        ("weighted_dice", True): (99.9699, 98.3117, 97.1692, 98.3524, 98.4454, 1.6476, 0.0381, 0.9366),
        ("ce", True): (99.9735, 98.4012, 97.3453, 98.3788, 98.6395, 1.6212, 0.0266, 0.8388),
        ("weighted_ce", True): (99.9699, 98.4557, 97.3259, 98.7066, 98.3769, 1.2934, 0.0175, 0.9988),
        ("lovasz", True): (99.9776, 98.6048, 97.5974, 98.6550, 98.7267, 1.3450, 0.0227, 0.8252),
    }.items()
}
