"""Train AMFL: `accelerate launch train_accelerate.py [options]` (or `python train_accelerate.py`).

See `python train_accelerate.py --help`; the defaults are the paper's.

Exit codes: 0 done; 1 training or the upload failed (the results so far are kept in
--output_dir); 2 bad input: a bad option (argparse) or data that cannot be trained on, such as
an --h5 file that is missing, not HDF5, damaged, of another layout or holding values the
published files cannot (NaN, fractional or out-of-range grey levels, labels outside 0-4). Bad
input is reported as one `error: <file>: <what is wrong>; expected <what>` line on stderr,
without a traceback, and is found before anything is written: --output_dir is left as it was.
"""

import sys

from amfl.data.export import HubPushError
from amfl.data.rebuild import RecipeError
from amfl.data.sources import SourceError
from amfl.training import NonFiniteLossError, parse_config, train

#: Exit codes: 1 training or upload failed (results so far are kept), 2 bad input.
FAILED, BAD_INPUT = 1, 2


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        result = train(config)
    except (SourceError, RecipeError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    except (NonFiniteLossError, HubPushError) as error:
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    if not result.is_main_process:
        return 0
    means = ", ".join(f"{name} {value:.4f}" for name, value in result.test_scores.means.items())
    print(f"test scores of the best generator (epoch {result.state.best_epoch}): {means}")
    print(f"model folder: {result.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
