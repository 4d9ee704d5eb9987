"""The tasks the suite knows: ELUE's six text-classification tasks and three synthetic demo tasks."""

from __future__ import annotations

from dataclasses import dataclass

METRICS = ("accuracy", "acc_and_f1", "pearson_spearman")

# Both regression tasks (STS-B and its synthetic stand-in) score similarity on the STS 0-5 scale;
# the readers reject labels outside it.
REGRESSION_LABEL_RANGE = (0.0, 5.0)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    paper_task: str     # the paper's task this one stands for (synthetic tasks are stand-ins)
    pair: bool          # sentence-pair input (text_b present)
    num_labels: int     # 1 = regression
    metric: str         # one of METRICS, as in the authors' metrics.py / ELUE

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("SST-2", "SST-2", pair=False, num_labels=2, metric="accuracy"),
        TaskSpec("IMDb", "IMDb", pair=False, num_labels=2, metric="accuracy"),
        TaskSpec("SNLI", "SNLI", pair=True, num_labels=3, metric="accuracy"),
        TaskSpec("SciTail", "SciTail", pair=True, num_labels=2, metric="accuracy"),
        TaskSpec("MRPC", "MRPC", pair=True, num_labels=2, metric="acc_and_f1"),
        TaskSpec("STS-B", "STS-B", pair=True, num_labels=1, metric="pearson_spearman"),
        TaskSpec("synth-sentiment", "SST-2", pair=False, num_labels=2, metric="accuracy"),
        TaskSpec("synth-nli", "SNLI", pair=True, num_labels=3, metric="accuracy"),
        TaskSpec("synth-similarity", "STS-B", pair=True, num_labels=1, metric="pearson_spearman"),
    )
}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})") from None
