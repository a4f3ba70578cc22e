"""Make the shipped demo weights: ``python -m workstation_monai_gan.demo_training [--epochs N]``.

Trains on the project's CT phantoms (`phantoms.training_volumes()`) on the CPU with one thread
(reproducible, and gentle on a shared machine), writes the model folder (checkpoints, metrics,
sample grid), copies its model.pt to ``weights/demo_gan.pt`` and prints the quality figures the
model card quotes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

DEMO_EPOCHS = 45
DEMO_SEED = 7
WEIGHTS = Path(__file__).parent / "weights" / "demo_gan.pt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument("--model-dir", type=Path, help="keep the model folder here")
    parser.add_argument(
        "--resume", action="store_true", help="carry on from --model-dir's last checkpoint"
    )
    parser.add_argument("--no-copy", action="store_true", help="do not replace the demo weights")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from workstation.plugins.api import AnalysisInputs, TrainContext
    from workstation_monai_gan import quality, trainer
    from workstation_monai_gan.phantoms import held_out_volumes, training_volumes

    model_dir = args.model_dir or Path(tempfile.mkdtemp(prefix="gan-demo-"))
    volumes = training_volumes()
    ctx = TrainContext(
        analysis_id="gan.generate",
        params={},
        inputs=AnalysisInputs(),
        seed=args.seed,
        scratch_dir=model_dir,
        volumes=volumes,
        model_dir=model_dir,
        epochs=args.epochs,
        resume=args.resume,
        on_log=lambda level, message: print(message, flush=True),
    )
    ctx.seed_everything()
    trainer.train(ctx)
    if not args.no_copy:
        WEIGHTS.parent.mkdir(exist_ok=True)
        shutil.copyfile(model_dir / "model.pt", WEIGHTS)
        print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size / 1e6:.2f} MB)")
    figures = quality.evaluate(model_dir / "model.pt", volumes, held_out_volumes())
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
