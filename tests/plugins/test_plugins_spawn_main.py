"""Starting "spawn" children swaps `sys.modules["__main__"]` for a moment; the window starts
training children and analysis workers from different threads, and the real module must be
back afterwards whatever the overlap."""

from __future__ import annotations

import sys
import threading

from workstation.gui.training_process import light_main as training_light_main
from workstation.plugins.worker import light_main as worker_light_main


def test_overlapping_starts_of_both_kinds_of_child_restore_the_real_main() -> None:
    real = sys.modules["__main__"]
    training_inside, let_training_finish = threading.Event(), threading.Event()
    training_done = threading.Event()

    def start_training_child() -> None:
        with training_light_main():
            training_inside.set()
            let_training_finish.wait(10)

    def start_worker() -> None:
        with worker_light_main():
            training_done.wait(10)  # this start ends after the training child's

    training = threading.Thread(target=start_training_child)
    worker = threading.Thread(target=start_worker)
    try:
        training.start()
        assert training_inside.wait(10)
        assert sys.modules["__main__"] is not real  # the stand-in while a child starts
        worker.start()
        worker.join(0.3)  # with one lock it waits; with two it would swap over the stand-in
        let_training_finish.set()
        training.join(10)
        training_done.set()
        worker.join(10)
        assert sys.modules["__main__"] is real
    finally:
        let_training_finish.set()
        training_done.set()
        sys.modules["__main__"] = real
