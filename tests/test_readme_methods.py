"""README.md's list of methods is the registry's: every registered method is listed under its family,
and nothing listed there is unknown (a method added or renamed without the README fails here)."""

import re

from earlyexit.methods import METHODS
from tests.conftest import REPO


def registry_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("- **Methods registry**")
    return text[start:text.index("- **Dynamic early exit**", start)]


def listed() -> dict[str, set[str]]:
    """family (reference, static, token-level, dynamic, generation) -> the names listed in its line."""
    out = {}
    for family, body in re.findall(r"^  - ([a-z-]+): (.*?)(?=^  - |\Z|^\n)", registry_section(), re.S | re.M):
        out[family] = set(re.findall(r"`([a-z_]+)`", body))
    return out


def test_every_registered_method_is_listed_under_its_family():
    lists = listed()
    for name, method in METHODS.items():
        family = "reference" if method.reference else "generation" if method.generation_lm else method.family
        assert name in lists.get(family, set()), f"README.md: method {name} is not listed under {family}"


def test_nothing_listed_is_unknown():
    names = set().union(*listed().values())
    assert names - set(METHODS) <= {"default", "released"}, names - set(METHODS)
