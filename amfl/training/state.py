"""Where a run stands (epoch, best score, patience) and its checkpoints on disk.

Accelerate's ``save_state`` stores the models (safetensors), optimisers, samplers and RNG
states; this module adds the loop's own counters as JSON beside them, so ``--resume``
continues at the next epoch with nothing unpickled but what Accelerate loads with
``weights_only=True``.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "trainer_state.json"
CHECKPOINTS = "checkpoints"
#: Checkpoints kept on disk: the newest, and one before it in case a write was cut short.
KEPT_CHECKPOINTS = 2
_CHECKPOINT_NAME = re.compile(r"epoch_(\d+)$")


@dataclass
class TrainerState:
    """``epochs_done`` counts finished epochs; ``best_dice`` is the best validation Dice.
    ``main_floor``: when set (``--hold_pommier``), an epoch whose main validation Dice is
    below it is never the best, whatever its selection Dice."""

    epochs_done: int = 0
    best_dice: float = -1.0
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    main_floor: float | None = None

    def record(self, epoch: int, validation_dice: float, main_dice: float | None = None) -> bool:
        """Count epoch ``epoch`` (0 for the starting model of a fine-tune) and return whether
        its selection Dice ``validation_dice`` is a new best; ``main_dice`` is its main
        validation set's Dice, checked against ``main_floor``."""
        self.epochs_done = epoch
        held = self.main_floor is None or (main_dice is not None and main_dice >= self.main_floor)
        improved = held and validation_dice > self.best_dice
        if improved:
            self.best_dice, self.best_epoch, self.epochs_without_improvement = validation_dice, epoch, 0
        else:
            self.epochs_without_improvement += 1
        return improved


def checkpoint_dir(output_dir: Path, epoch: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"epoch_{epoch:04d}"


def write_state(folder: Path, state: TrainerState) -> None:
    (Path(folder) / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")


def read_state(folder: Path) -> TrainerState:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {folder} has no {STATE_FILE}: it was not written by this trainer or is incomplete")
    return TrainerState(**json.loads(path.read_text(encoding="utf-8")))


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoint folders with a trainer state (written last), oldest first."""
    root = Path(output_dir) / CHECKPOINTS
    found = [path for path in root.glob("epoch_*") if _CHECKPOINT_NAME.search(path.name) and (path / STATE_FILE).is_file()]
    return sorted(found, key=lambda path: int(_CHECKPOINT_NAME.search(path.name).group(1)))


def latest_checkpoint(output_dir: Path) -> Path:
    checkpoints = complete_checkpoints(output_dir)
    if not checkpoints:
        raise FileNotFoundError(
            f"--resume: no complete checkpoint under {Path(output_dir) / CHECKPOINTS}; start "
            "without --resume, or point --output_dir at the folder of the run to continue"
        )
    return checkpoints[-1]


def prune_checkpoints(output_dir: Path) -> None:
    """Delete all but the newest ``KEPT_CHECKPOINTS`` complete checkpoints."""
    for old in complete_checkpoints(output_dir)[:-KEPT_CHECKPOINTS]:
        shutil.rmtree(old)
