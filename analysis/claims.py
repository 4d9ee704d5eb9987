"""The claims ledger: each conclusion of the two papers, decided on this preset's records with a
named test, a threshold and a verdict (holds / fails / inconclusive / not run in this preset).

Claims (paper.md): HashEE's (a) human-defined difficulty is barely learnable; (b) model-defined
difficulty predictors do not beat the per-layer prior (Majority); (c) HashEE keeps the full
model's score at its speed-up; (d) the frequency hash gives the largest speed-up at a similar
score; (e) HashEE beats the dynamic methods at equal speed-up, in score and in wall-clock time;
(f) HashEE works for generation. ConsistentEE's: (g) it beats plain multi-exit training (its
`paper_rival`) at equal speed-up; (h) its advantage grows with the speed-up. And the paper's
explanation of its backbone figure (issue 20): (i) HashEE's advantage over the dynamic methods grows
when the backbone was pre-trained with exits (a backbone of source pretrained-here against the one it
was pre-trained from: the difference of the two (e) differences, paired on the same test instances).

Methods are found through the registry only (`paper_subject`, `speed_variant`, `reference`,
`family`, `paper_rival`, `table_variants`). Every speed-up is the exact FLOPs speed-up against the
backbone family's 12-layer reference (`flops_speedup`). Scores on test; comparisons pair the same
test instances (analysis/bootstrap.py): a paired bootstrap over instances, seeds pooled, or a
paired t-test across seeds when both sides have `min_seeds` seeds. At equal speed-up a dynamic
curve (one seed's sweep points, or runs of one variant such as an alpha grid) is interpolated
linearly in speed-up: between points a and b the outcome is the mix w * a + (1 - w) * b,
w = (s_b - s) / (s_b - s_a), resampled jointly with the other side.

A claim tested on several tasks (or rivals) holds when every part holds, fails when any part
fails, and is inconclusive otherwise; each interval is at `confidence`, with no multiplicity
correction (the parts are listed with their own intervals).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

import numpy as np
import pandas as pd

from analysis.bootstrap import Estimate, Outcome, Quantity, combine, difference, estimate, wilson

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "fails", "inconclusive", "not run in this preset"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_RUN)
COLUMNS = ["claim", "paper", "statement", "numbers", "test", "threshold", "verdict"]
MAIN_TABLE = "elue_main"           # the subject's main-table variant is the one the claims (c), (e) use


class MissingOutcomes(ValueError):
    """A record or sweep point has no per-instance outcomes (written before records kept them): the
    claims that need it are inconclusive, with the file named, until it is rerun."""


@dataclass(frozen=True)
class Thresholds:
    """config `claims` (workflow/schemas/config.schema.yaml holds the defaults and their meaning)."""

    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    min_seeds: int = 3
    keep_margin: float = 1.0
    similar_margin: float = 2.0
    generation_margin: float = 2.0
    chance_margin: float = 10.0
    prior_margin: float = 5.0
    grid_points: int = 5

    @classmethod
    def from_config(cls, section: dict | None) -> "Thresholds":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (section or {}).items() if k in known})


@dataclass
class Inputs:
    """What the ledger reads. `runs`: runs.csv-like (task, backbone, method, variant, seed, family,
    flops_speedup, test_score, path; a dynamic row is ignored: its curve is in `curves`). `curves`:
    dynamic_curves.csv-like (task, backbone, method, variant, seed, setting, dev_score,
    flops_speedup, path). `outcome(path, setting)`: the per-instance test outcome of a run record
    (setting None) or of one sweep point. `summaries`: summarization runs (task, backbone, method,
    variant, seed, metric, test_score, enc_speedup, path). `timing`: timing records
    (workflow/schemas/timing.schema.yaml). `difficulty_human` / `difficulty_model`: the difficulty
    study's tidy tables (difficulty/tables.py), None when the preset has no study."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    outcome: Callable[[str, str | None], Outcome]
    summaries: pd.DataFrame | None = None
    timing: list = field(default_factory=list)
    difficulty_human: pd.DataFrame | None = None
    difficulty_model: pd.DataFrame | None = None
    # backbone pre-trained here with exits (source pretrained-here) -> the backbone it was pre-trained from
    pretrained_pairs: dict = field(default_factory=dict)


@dataclass
class Part:
    """One tested comparison of a claim (a task, a rival, ...)."""

    numbers: str
    verdict: str
    test: str = ""


def at_least(est: Estimate, bound: float) -> str:
    """'the quantity exceeds `bound`': holds when the whole interval is above it, fails when below."""
    return HOLDS if est.low > bound else FAILS if est.high < bound else INCONCLUSIVE


def at_most(est: Estimate, bound: float) -> str:
    """'the quantity stays below `bound`'."""
    return HOLDS if est.high < bound else FAILS if est.low > bound else INCONCLUSIVE


def overall(verdicts: list[str]) -> str:
    """A claim's verdict from its parts'; parts that could not be compared (NOT_RUN, e.g. curves that
    do not reach the speed-up) leave it inconclusive when nothing else was tested."""
    if not verdicts:
        return NOT_RUN
    tested = [v for v in verdicts if v != NOT_RUN]
    if not tested:
        return INCONCLUSIVE
    return FAILS if FAILS in tested else HOLDS if all(v == HOLDS for v in tested) else INCONCLUSIVE


# --- curves: interpolation in speed-up -------------------------------------------------------------

@dataclass
class Curve:
    """One seed's operating points of a method variant, by increasing speed-up (equal speed-ups: the
    point with the better dev score, so the test set never picks)."""

    speedups: np.ndarray
    outcomes: list

    @classmethod
    def of(cls, points: list[tuple[float, float, object]]) -> "Curve":
        """From (speed-up, dev score, outcome) triples."""
        ordered = sorted(points, key=lambda p: (p[0], -p[1]))
        kept = [p for i, p in enumerate(ordered) if i == 0 or not np.isclose(p[0], ordered[i - 1][0], rtol=0, atol=1e-9)]
        return cls(np.array([p[0] for p in kept], dtype=float), [p[2] for p in kept])

    @property
    def low(self) -> float:
        return float(self.speedups[0])

    @property
    def high(self) -> float:
        return float(self.speedups[-1])

    def at(self, speedup: float) -> list[tuple[float, object]] | None:
        """[(weight, outcome)] of the point at `speedup` (a mix of the two neighbours), None outside the curve."""
        return interpolation_terms(self.speedups, self.outcomes, speedup)


def interpolation_terms(speedups, outcomes, s: float, atol: float = 1e-9) -> list[tuple[float, object]] | None:
    """Between the neighbours a (s_a <= s) and b (s_b >= s) of increasing `speedups`: [(w, a), (1 - w, b)],
    w = (s_b - s) / (s_b - s_a); [(1, a)] on a point; None outside [first, last]."""
    speedups = np.asarray(speedups, dtype=float)
    if len(speedups) == 0 or s < speedups[0] - atol or s > speedups[-1] + atol:
        return None
    exact = np.flatnonzero(np.isclose(speedups, s, rtol=0, atol=atol))
    if len(exact):
        return [(1.0, outcomes[int(exact[0])])]
    b = int(np.searchsorted(speedups, s))
    a = b - 1
    w = (speedups[b] - s) / (speedups[b] - speedups[a])
    return [(float(w), outcomes[a]), (float(1 - w), outcomes[b])]


def seed_curves(curves: pd.DataFrame, outcome, task, backbone, method, variant) -> dict[int, Curve]:
    rows = curves[(curves["task"] == task) & (curves["backbone"] == backbone) & (curves["method"] == method)
                  & (curves["variant"] == variant)]
    return {int(seed): Curve.of([(float(r.flops_speedup), float(r.dev_score), outcome(r.path, r.setting))
                                 for r in group.itertuples()])
            for seed, group in rows.groupby("seed")}


def curve_quantity(by_seed: dict[int, Curve], speedup: float) -> Quantity:
    """The curves' score at `speedup`, over the seeds whose curve reaches it."""
    terms = {s: c.at(speedup) for s, c in by_seed.items()}
    return Quantity.of({s: t for s, t in terms.items() if t is not None})


def run_quantity(rows: pd.DataFrame, outcome) -> Quantity:
    return Quantity.of({int(r.seed): [(1.0, outcome(r.path, None))] for r in rows.itertuples()})


# --- the registry's roles -------------------------------------------------------------------------

def subject(registry):
    found = [m for m in registry.values() if m.paper_subject]
    if len(found) > 1:
        raise ValueError(f"registry: several methods declare paper_subject ({', '.join(m.name for m in found)})")
    return found[0] if found else None


def reference(registry):
    found = [m for m in registry.values() if m.reference]
    return found[0] if found else None


def preferred_variant(method, present) -> str | None:
    """The method's main-table variant when it ran, else its first variant that ran."""
    order = [*method.table_variants.get(MAIN_TABLE, ()), *method.variants]
    return next((v for v in order if v in set(present)), None)


def _groups(frame: pd.DataFrame):
    return frame.groupby(["task", "backbone"], sort=True) if len(frame) else []


class Ledger:
    """Each claim's parts (one per task x backbone, rival, batch size, predictor), decided on `inputs`.
    Run rows of the dynamic family are left out: those methods enter through their curves."""

    def __init__(self, inputs: Inputs, thresholds: Thresholds, registry):
        self.inputs, self.t, self.registry = inputs, thresholds, registry
        runs = inputs.runs
        self.static_runs = runs[runs["family"] != "dynamic"] if len(runs) else runs
        self.subject, self.reference = subject(registry), reference(registry)

    def estimate(self, quantity: Quantity, key: str) -> Estimate:
        return estimate(quantity, confidence=self.t.confidence, resamples=self.t.resamples, seed=self.t.seed, key=key,
                        min_seeds=self.t.min_seeds)

    @property
    def level(self) -> str:
        return f"{100 * self.t.confidence:g}%"

    def _subject_runs(self, frame):
        """(task, backbone, main-variant rows of the subject, rows of the reference) per group with both."""
        if self.subject is None or self.reference is None or frame is None or not len(frame):
            return
        for (task, backbone), group in _groups(frame):
            mine = group[group["method"] == self.subject.name]
            variant = preferred_variant(self.subject, mine["variant"])
            full = group[(group["method"] == self.reference.name)]
            if variant is not None and len(full):
                yield task, backbone, mine[mine["variant"] == variant], full

    # (c) -------------------------------------------------------------------------------------------
    def keeps_score(self) -> list[Part]:
        parts = []
        for task, backbone, mine, full in self._subject_runs(self.static_runs):
            est = self.estimate(difference(run_quantity(mine, self.inputs.outcome), run_quantity(full, self.inputs.outcome)),
                                f"c/{task}/{backbone}")
            parts.append(Part(f"{task} ({backbone}): {self.subject.label(mine['variant'].iloc[0])} "
                              f"{mine['test_score'].mean():.1f} at {mine['flops_speedup'].mean():.2f}x vs "
                              f"{self.reference.paper_name} {full['test_score'].mean():.1f}: {est.text()}",
                              at_least(est, -self.t.keep_margin), est.test))
        return parts

    # (d) -------------------------------------------------------------------------------------------
    def fastest_hash(self) -> list[Part]:
        fast = self.subject.speed_variant if self.subject else None
        if fast is None:
            return []
        parts = []
        for (task, backbone), group in _groups(self.static_runs):
            mine = group[group["method"] == self.subject.name]
            if fast not in set(mine["variant"]) or mine["variant"].nunique() < 2:
                continue
            speed = mine.groupby("variant")["flops_speedup"].mean()
            others = [v for v in speed.index if v != fast]
            largest = bool(all(speed[fast] > speed[v] for v in others))
            ours = run_quantity(mine[mine["variant"] == fast], self.inputs.outcome)
            pieces, verdicts, tests = [], [], set()
            for other in others:
                est = self.estimate(difference(ours, run_quantity(mine[mine["variant"] == other], self.inputs.outcome)),
                                    f"d/{task}/{backbone}/{other}")
                verdicts.append(at_least(est, -self.t.similar_margin))
                tests.add(est.test)
                pieces.append(f"vs {self.subject.label(other)} ({speed[other]:.2f}x) {est.text()}")
            verdict = FAILS if not largest else overall(verdicts)
            parts.append(Part(f"{task} ({backbone}): {self.subject.label(fast)} {speed[fast]:.2f}x "
                              f"({'the largest' if largest else 'not the largest'}); score " + ", ".join(pieces),
                              verdict, "; ".join(sorted(tests))))
        return parts

    # (e) score -------------------------------------------------------------------------------------
    def dynamic_gaps(self, task: str, backbone: str):
        """Per dynamic curve on (task, backbone), when the subject ran there: (method, rival variant, s,
        ours, theirs, by_seed): `ours` the subject's main variant's score, `s` its mean speed-up,
        `theirs` the curve's score interpolated at s (no terms for a seed whose curve does not reach s)."""
        curves = self.inputs.curves
        if self.subject is None or not len(curves) or not len(self.static_runs):
            return
        group = self.static_runs[(self.static_runs["task"] == task) & (self.static_runs["backbone"] == backbone)]
        mine = group[group["method"] == self.subject.name]
        variant = preferred_variant(self.subject, mine["variant"])
        if variant is None:
            return
        mine = mine[mine["variant"] == variant]
        s = float(mine["flops_speedup"].mean())
        ours = run_quantity(mine, self.inputs.outcome)
        here = curves[(curves["task"] == task) & (curves["backbone"] == backbone)]
        for method in (m for m in self.registry.values() if m.family == "dynamic"):
            for rival_variant in [v for v in method.variants if v in set(here[here["method"] == method.name]["variant"])]:
                by_seed = seed_curves(here, self.inputs.outcome, task, backbone, method.name, rival_variant)
                yield method, rival_variant, s, ours, curve_quantity(by_seed, s), by_seed

    def beats_dynamic(self) -> list[Part]:
        parts = []
        for (task, backbone), _ in _groups(self.static_runs):
            for method, rival_variant, s, ours, theirs, by_seed in self.dynamic_gaps(task, backbone):
                name = f"{task} ({backbone}) vs {method.label(rival_variant)}"
                pair = difference(ours, theirs)
                if not pair.terms:
                    span = f"{min(c.low for c in by_seed.values()):.2f}-{max(c.high for c in by_seed.values()):.2f}x"
                    parts.append(Part(f"{name}: its curve ({span}) does not reach {s:.2f}x: not compared", NOT_RUN))
                    continue
                est = self.estimate(pair, f"e/{task}/{backbone}/{method.name}/{rival_variant}")
                # both sides over the seeds compared (a seed whose curve does not reach s is left out)
                ours_there = Quantity.of({seed: ours.terms[seed] for seed in pair.seeds}).value()
                theirs_there = Quantity.of({seed: theirs.terms[seed] for seed in pair.seeds}).value()
                seeds = "" if len(pair.seeds) == len(ours.seeds) else f" (seed {', '.join(map(str, pair.seeds))} only)"
                parts.append(Part(f"{name} at {s:.2f}x{seeds}: {ours_there:.1f} vs {theirs_there:.1f}, {est.text()}",
                                  at_least(est, 0.0), est.test))
        return parts

    # (e) wall-clock --------------------------------------------------------------------------------
    def faster_wall_clock(self) -> list[Part]:
        parts = []
        if self.subject is None:
            return parts
        for record in self.inputs.timing:
            entries = record["entries"]
            mine = [e for e in entries if e["method"] == self.subject.name]
            variant = preferred_variant(self.subject, [e["variant"] for e in mine])
            mine = next((e for e in mine if e["variant"] == variant), None)
            if mine is None:
                continue
            for rival in (e for e in entries if e["family"] == "dynamic"):
                by_batch = {t["batch_size"]: t for t in rival["timings"]}
                for ours in mine["timings"]:
                    theirs = by_batch.get(ours["batch_size"])
                    if theirs is None:
                        continue
                    a, b = np.asarray(ours["seconds"]), np.asarray(theirs["seconds"])
                    verdict = HOLDS if a.max() < b.min() else FAILS if a.min() > b.max() else INCONCLUSIVE
                    parts.append(Part(
                        f"{record['task']} ({record['backbone']}), batch {ours['batch_size']}: "
                        f"{mine['label']} {ours['wall_speedup']:.2f}x wall ({mine['flops_speedup']:.2f}x FLOPs) vs "
                        f"{rival['label']} {theirs['wall_speedup']:.2f}x wall ({rival['flops_speedup']:.2f}x FLOPs)",
                        verdict, f"repeat ranges of the timed passes ({len(a)} vs {len(b)} repeats) do not overlap"))
        return parts

    # (f) -------------------------------------------------------------------------------------------
    def generation(self) -> list[Part]:
        parts = []
        for task, backbone, mine, full in self._subject_runs(self.inputs.summaries):
            est = self.estimate(difference(run_quantity(mine, self.inputs.outcome), run_quantity(full, self.inputs.outcome)),
                                f"f/{task}/{backbone}")
            enc = float(mine["enc_speedup"].mean())
            verdict = FAILS if enc <= 1.0 else at_least(est, -self.t.generation_margin)
            parts.append(Part(f"{task} ({backbone}): ROUGE {mine['test_score'].mean():.1f} at {enc:.2f}x encoder vs "
                              f"{full['test_score'].mean():.1f}: {est.text()}", verdict, est.test))
        return parts

    # (g), (h) --------------------------------------------------------------------------------------
    def rival_grid(self):
        """Per method with a paper_rival and task x backbone where both have curves: (label, grid,
        per-grid-point differences)."""
        curves = self.inputs.curves
        for method in encoder_methods(self.registry):
            rival = self.registry.get(method.paper_rival) if method.paper_rival else None
            if rival is None or not len(curves):
                continue
            for (task, backbone), here in _groups(curves):
                mine_v = preferred_variant(method, here[here["method"] == method.name]["variant"])
                rival_v = preferred_variant(rival, here[here["method"] == rival.name]["variant"])
                if mine_v is None or rival_v is None:
                    continue
                mine = seed_curves(here, self.inputs.outcome, task, backbone, method.name, mine_v)
                theirs = seed_curves(here, self.inputs.outcome, task, backbone, rival.name, rival_v)
                label = f"{task} ({backbone}): {method.label(mine_v)} vs {rival.label(rival_v)}"
                everything = [*mine.values(), *theirs.values()]
                low, high = max(c.low for c in everything), min(c.high for c in everything)
                if high - low <= 1e-6:
                    yield label, None, [], (method, mine_v, rival, rival_v)
                    continue
                grid = np.linspace(low, high, self.t.grid_points)
                diffs = [difference(curve_quantity(mine, s), curve_quantity(theirs, s)) for s in grid]
                if not all(d.terms for d in diffs):      # no seed in common
                    yield label, None, [], (method, mine_v, rival, rival_v)
                    continue
                yield label, grid, diffs, (method, mine_v, rival, rival_v)

    def beats_rival(self, grown: bool = False) -> list[Part]:
        parts = []
        for label, grid, diffs, (method, _, rival, _) in self.rival_grid():
            if grid is None:
                parts.append(Part(f"{label}: no common seed, or the curves' speed-up ranges do not overlap: "
                                  "not compared", NOT_RUN))
                continue
            span = f"{grid[0]:.2f}-{grid[-1]:.2f}x ({len(grid)} points)"
            key = f"{'h' if grown else 'g'}/{label}"
            if not grown:
                est = self.estimate(combine([(1.0 / len(grid), d) for d in diffs]), key)
                at_points = ", ".join(f"{s:.2f}x {d.value():+.1f}" for s, d in zip(grid, diffs))
                parts.append(Part(f"{label}, mean difference over {span}: {est.text()} (at {at_points})",
                                  at_least(est, 0.0), est.test))
            else:
                centred = grid - grid.mean()
                weights = centred / float((centred ** 2).sum())
                est = self.estimate(combine([(float(c), d) for c, d in zip(weights, diffs)]), key)
                parts.append(Part(f"{label}, slope of the difference over {span}: {est.text(2)} points per 1x",
                                  at_least(est, 0.0), est.test))
        return parts

    # (i) -------------------------------------------------------------------------------------------
    def exit_pretraining_gain(self) -> list[Part]:
        """Per backbone pre-trained with exits x task x dynamic curve run on it and on its base: the
        subject's advantage over the curve (at the subject's own speed-up on each backbone) with exits
        minus without, every outcome scored on the same resamples of the test instances."""
        parts = []
        tasks = sorted(set(self.static_runs["task"])) if len(self.static_runs) else []
        for exits, base in self.inputs.pretrained_pairs.items():
            for task in tasks:
                plain = {(m.name, v): (m, v, s, o, t) for m, v, s, o, t, _ in self.dynamic_gaps(task, base)}
                for method, variant, s, ours, theirs, _ in self.dynamic_gaps(task, exits):
                    if (method.name, variant) not in plain:
                        continue
                    _, _, s_base, ours_base, theirs_base = plain[(method.name, variant)]
                    name = f"{task} vs {method.label(variant)}, {exits} vs {base}"
                    with_exits, without = difference(ours, theirs), difference(ours_base, theirs_base)
                    gain = combine([(1.0, with_exits), (-1.0, without)])
                    if not gain.terms:
                        parts.append(Part(f"{name}: a curve does not reach {self.subject.paper_name}'s speed-up "
                                          f"({s:.2f}x / {s_base:.2f}x) on a common seed: not compared", NOT_RUN))
                        continue
                    est = self.estimate(gain, f"i/{task}/{exits}/{base}/{method.name}/{variant}")

                    def over(q):
                        return Quantity.of({seed: q.terms[seed] for seed in gain.seeds}).value()

                    parts.append(Part(f"{name}: advantage {over(with_exits):+.1f} at {s:.2f}x with exits vs "
                                      f"{over(without):+.1f} at {s_base:.2f}x without: gain {est.text()}",
                                      at_least(est, 0.0), est.test))
        return parts

    # (a), (b) --------------------------------------------------------------------------------------
    def human_difficulty(self) -> list[Part]:
        from difficulty.tables import DISPLAY

        frame = self.inputs.difficulty_human
        parts = []
        if frame is None or not len(frame):
            return parts
        for row in frame.itertuples():
            if row.predictor == DISPLAY["majority"]:
                continue
            n = int(row.test_rows)
            low, high = wilson(row.test_accuracy_mean / 100 * n, n, self.t.confidence)
            est = Estimate(row.test_accuracy_mean - row.chance, 100 * low - row.chance, 100 * high - row.chance,
                           f"Wilson interval of test accuracy (n = {n}, mean of {int(row.seeds)} seed(s))", int(row.seeds))
            parts.append(Part(f"{row.predictor}: test accuracy {row.test_accuracy_mean:.1f} vs chance {row.chance:.1f}: "
                              f"{est.text()}", at_most(est, self.t.chance_margin), est.test))
        return parts

    def model_difficulty(self) -> list[Part]:
        from difficulty.tables import DISPLAY

        frame = self.inputs.difficulty_model
        parts = []
        if frame is None or not len(frame):
            return parts
        for level, group in frame.groupby("level", sort=False):
            prior = group[group["predictor"] == DISPLAY["majority"]]
            if not len(prior) or not np.isfinite(prior["f1_mean"].iloc[0]):
                continue
            base = float(prior["f1_mean"].iloc[0])
            for row in group[group["predictor"] != DISPLAY["majority"]].itertuples():
                if not np.isfinite(row.f1_mean):
                    continue
                seeds, gap = int(row.seeds), row.f1_mean - base
                if seeds >= self.t.min_seeds and np.isfinite(row.f1_std):
                    from scipy import stats

                    half = stats.t.ppf((1 + self.t.confidence) / 2, seeds - 1) * row.f1_std / np.sqrt(seeds)
                    est = Estimate(gap, gap - half, gap + half, f"t-test across {seeds} seeds (Majority is deterministic)",
                                   seeds)
                    verdict, numbers = at_most(est, self.t.prior_margin), est.text()
                    test = est.test
                else:
                    verdict, numbers = INCONCLUSIVE, f"{gap:+.1f} (no interval)"
                    test = (f"none: {seeds} seed(s), fewer than {self.t.min_seeds}, and the difficulty records keep no "
                            "per-cell predictions to bootstrap")
                parts.append(Part(f"{level} {row.predictor}: F1 {row.f1_mean:.1f} vs Majority {base:.1f}: {numbers}",
                                  verdict, test))
        return parts


@dataclass(frozen=True)
class Claim:
    """`paper` and `statement` name methods through roles filled from the registry: {subject} (the
    method with paper_subject), {speed} (its speed_variant's label), {method} / {rival} (a method with
    a paper_rival, and that rival); `paper`: the role whose paper makes the claim ("subject" or
    "method_paper")."""

    key: str
    paper: str
    statement: str
    threshold: Callable[[Thresholds], str]
    parts: Callable[[Ledger], list]


CLAIMS = (
    Claim("a", "subject", "Human-defined difficulty (simple vs difficult SNLI pairs) is barely learnable",
          lambda t: f"every learned predictor's test accuracy below chance + {t.chance_margin:g} points (upper {t.confidence:.0%} bound)",
          Ledger.human_difficulty),
    Claim("b", "subject", "Model-defined difficulty predictors do not beat the per-layer prior (Majority)",
          lambda t: f"every predictor's F1 below Majority + {t.prior_margin:g} points (upper {t.confidence:.0%} bound)",
          Ledger.model_difficulty),
    Claim("c", "subject", "{subject} keeps the full model's score at its speed-up",
          lambda t: f"score - full model's above -{t.keep_margin:g} points (lower {t.confidence:.0%} bound), per task",
          Ledger.keeps_score),
    Claim("d", "subject", "{subject}'s {speed} hash gives the largest speed-up at a similar score",
          lambda t: f"largest mean FLOPs speed-up of the hashes, and score - each other hash above -{t.similar_margin:g} "
                    f"points (lower {t.confidence:.0%} bound)",
          Ledger.fastest_hash),
    Claim("e-score", "subject", "{subject} beats the dynamic early-exit methods at equal speed-up (score)",
          lambda t: f"score - each dynamic curve's at the same speed-up above 0 (lower {t.confidence:.0%} bound), per task "
                    "and method",
          Ledger.beats_dynamic),
    Claim("e-wall", "subject", "{subject} is faster in wall-clock time than the dynamic methods",
          lambda t: "every timed pass faster than every pass of the dynamic method, per batch size "
                    "(each method at its matched operating point)",
          Ledger.faster_wall_clock),
    Claim("f", "subject", "{subject} works for generation: ROUGE kept at its encoder speed-up",
          lambda t: f"encoder speed-up above 1 and ROUGE - full above -{t.generation_margin:g} points (lower {t.confidence:.0%} bound)",
          Ledger.generation),
    Claim("g", "method_paper", "{method} beats {rival} at equal speed-up",
          lambda t: f"mean score difference over {t.grid_points} speed-ups spanning both curves' overlap above 0 "
                    f"(lower {t.confidence:.0%} bound)",
          lambda ledger: ledger.beats_rival(grown=False)),
    Claim("h", "method_paper", "{method}'s advantage over {rival} grows with the speed-up",
          lambda t: f"least-squares slope of the difference over the {t.grid_points} speed-ups above 0 "
                    f"(lower {t.confidence:.0%} bound)",
          lambda ledger: ledger.beats_rival(grown=True)),
    Claim("i", "subject", "{subject}'s advantage over the dynamic methods grows when the backbone was pre-trained "
                          "with exits (the paper's explanation of its backbone figure)",
          lambda t: f"(score - dynamic curve's at the same speed-up) on the backbone pre-trained here with "
                    f"ElasticBERT's objective minus the same on the backbone it started from, above 0 (lower "
                    f"{t.confidence:.0%} bound), per task and method",
          Ledger.exit_pretraining_gain),
)


def encoder_methods(registry) -> list:
    """The methods of the encoder grid: claims (a)-(h) are about classification and summarization
    encoders; decoder-LM methods (`generation_lm`, the llm_early_exit table) have claims of their own."""
    return [m for m in registry.values() if not m.generation_lm]


def role_names(registry) -> dict:
    """The names the claims' statements use, from the registry (generic words where no method plays the role)."""
    me = subject(registry)
    rivalled = [m for m in encoder_methods(registry) if m.paper_rival and m.paper_rival in registry]
    return {
        "subject": me.paper_name if me else "the token-level method",
        "speed": me.label(me.speed_variant) if me and me.speed_variant else "fastest",
        "method": " / ".join(m.paper_name for m in rivalled) or "A method",
        "rival": " / ".join(registry[m.paper_rival].paper_name for m in rivalled) or "its paper's rival (none declared)",
        "method_paper": " / ".join(m.paper_name for m in rivalled) or "–",
    }


def claims_frame(inputs: Inputs, thresholds: Thresholds, registry=None) -> pd.DataFrame:
    """One row per claim (COLUMNS); `registry`: the methods registry (default earlyexit.methods.METHODS)."""
    if registry is None:
        from earlyexit.methods import METHODS as registry
    ledger = Ledger(inputs, thresholds, registry)
    names = role_names(registry)
    rows = []
    for claim in CLAIMS:
        try:
            parts = claim.parts(ledger)
        except MissingOutcomes as missing:
            parts = [Part(f"cannot be tested: {missing}", INCONCLUSIVE)]
        verdict = overall([p.verdict for p in parts])
        tests = list(dict.fromkeys(p.test for p in parts if p.test))
        rows.append({"claim": claim.key, "paper": names[claim.paper], "statement": claim.statement.format(**names),
                     "numbers": "; ".join(p.numbers + ("" if p.verdict == NOT_RUN else f" [{p.verdict}]") for p in parts)
                                if parts else "no runs for it in this preset",
                     "test": "; ".join(tests) if tests else "–", "threshold": claim.threshold(thresholds),
                     "verdict": verdict})
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_layout(frame: pd.DataFrame, preset: str):
    from analysis.table_writer import Column, Layout

    columns = [Column("paper"), Column("statement"), Column("numbers: difference [interval] [part's verdict]"),
               Column("test"), Column("threshold"), Column("verdict")]
    rows = [[r.claim, r.paper, r.statement, r.numbers, r.test, r.threshold, r.verdict] for r in frame.itertuples()]
    return Layout(name=f"claims-{preset}", stub="claim", columns=columns, groups=[(None, rows)],
                  caption=f"Claims ledger, preset `{preset}`: each claim of the papers decided on this preset's test "
                          "records (scores in points; speed-ups are exact FLOPs against the 12-layer reference).")
