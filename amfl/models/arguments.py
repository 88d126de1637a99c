"""Checks on model constructor arguments, so a bad config fails before any layer is built."""


def require_positive_ints(model_name: str, **sizes: int) -> None:
    """Raise a ValueError naming every size that is not a positive integer."""
    bad = {
        name: value
        for name, value in sizes.items()
        if isinstance(value, bool) or not isinstance(value, int) or value < 1
    }
    if bad:
        listed = ", ".join(f"{name}={value!r}" for name, value in bad.items())
        raise ValueError(f"{model_name} needs positive integers; got {listed}")
