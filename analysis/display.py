"""How tables and figures name, order and colour what they show, read from the methods registry
(earlyexit/methods/) and the run records, never from lists of method names kept here."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from earlyexit.methods import METHODS


@dataclass(frozen=True)
class Row:
    """One (method, variant) row of a paper table."""

    method: str
    variant: str
    label: str
    color: str
    reference: bool

    def published_row(self, table: str, paper_backbone: str | None = None) -> str:
        return METHODS[self.method].published_row(table, self.variant, paper_backbone)


def row_color(method: str, variant: str) -> str:
    """The variant's own colour where the method gives one (e.g. HashEE's hash functions), else the method's."""
    chosen = METHODS[method]
    return chosen.variant_colors.get(variant, chosen.color)


def table_rows(table: str) -> list[Row]:
    """Every (method, variant) the registry puts in paper table `table`: reference rows first, then by
    the methods' order, variants in the order the method declares them."""
    methods = [m for m in METHODS.values() if table in m.tables]
    methods.sort(key=lambda m: (not m.reference, m.order, m.name))
    return [Row(m.name, v, m.label(v), row_color(m.name, v), bool(m.reference)) for m in methods for v in m.variants]


RECIPES = {
    "per-method": "Each method trained with its own paper's recipe (config method_training, whose defaults are the "
                  "published ones; rows without one: the training section).",
    "shared": "Every row trained with the preset's one shared recipe (the training section; training_recipe: shared), "
              "not each method's published one.",
}


def recipe_sentence(recipe: str | None) -> str:
    """The caption's sentence on how the rows were trained (config training_recipe); '' when not given."""
    if recipe is None:
        return ""
    if recipe not in RECIPES:
        raise ValueError(f"config key 'training_recipe': {recipe!r} is not one of {', '.join(RECIPES)}")
    return RECIPES[recipe]


def task_title(task: str, paper_task: str, synthetic: bool) -> str:
    """A task as tables and figures name it: a synthetic task says it is one and what it stands for."""
    if synthetic:
        return f"{task} (synthetic stand-in for {paper_task})"
    return task if task == paper_task else f"{task} ({paper_task})"


def ordered(values, order) -> list:
    """Distinct `values`: those in `order` first, in that order, then the rest sorted."""
    values = set(values)
    return [v for v in dict.fromkeys(order) if v in values] + sorted(values - set(order))


def task_order(tasks: pd.DataFrame, paper_order) -> list[tuple[str, str, bool]]:
    """(task, paper_task, synthetic) of distinct tasks: by the paper's column order (`paper_order`,
    others after it alphabetically), a real task before its synthetic stand-in, then by name."""
    rank = {t: i for i, t in enumerate(dict.fromkeys(paper_order))}
    keys = {(t.task, t.paper_task, bool(t.synthetic))
            for t in tasks[["task", "paper_task", "synthetic"]].itertuples(index=False)}
    return sorted(keys, key=lambda k: (rank.get(k[1], len(rank)), k[1], k[2], k[0]))
