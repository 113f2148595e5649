"""The fine-tuning attack simulation: does a model trained on protected photos learn who a person is linked to?

The scraper's task (docs/design.md, photo_guard):

1. every identity gets a secret *affiliation* (one of ``labels`` classes, balanced, re-drawn ``draws`` times);
2. per identity a few photos (``train``) are shared, protected together as their owner would protect their set;
   the identity's other photos (up to ``queries``) stay clean and are the attacker's questions;
3. the attacker trains a head (linear probe, 2-layer MLP) on frozen encoder features of the shared photos to predict
   the affiliation, and is scored on the clean questions. Baseline: the same attacker trained on the clean photos.

Leakage is the attacker's accuracy on the questions; chance is ``1 / labels``. Protected sets are cached as PNG
(lossless, so the cache holds exactly the 8-bit pixels a protected PNG would) so a run resumes where it stopped.
"""

from .experiments import Evaluation, run_evaluation
from .goals import goals
from .heads import leakage, train_head
from .postprocess import POSTPROCESS, postprocess, postprocess_sets
from .protection import embed_images, protected_sets
from .task import EvalConfig, ProtectRun, Task, sample_task

__all__ = [
    "EvalConfig",
    "ProtectRun",
    "Evaluation",
    "Task",
    "POSTPROCESS",
    "sample_task",
    "train_head",
    "leakage",
    "postprocess",
    "postprocess_sets",
    "embed_images",
    "protected_sets",
    "run_evaluation",
    "goals",
]
