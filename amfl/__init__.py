"""AMFL: adversarial multiscale feature learning for overlapping chromosome segmentation."""
