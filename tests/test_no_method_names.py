"""Outside the registry no code picks a method out by its quoted name (issue 17 section 3): analysis,
the library, the difficulty study and the workflow ask the registry for what a method declares
(family, reference, reference_curve, uses_hash, paper_subject, ...). A quoted name there fails here,
naming the file and line."""

import re

from earlyexit.methods import METHODS
from tests.conftest import REPO

SCANNED = ("analysis", "earlyexit", "difficulty", "workflow")
EXEMPT = (
    "earlyexit/methods/",        # the registry itself: each module declares its name
)


def quoted_names() -> re.Pattern:
    """A registry name in single or double quotes (longest first: `consistentee_llm` before `consistentee`)."""
    names = "|".join(sorted(map(re.escape, METHODS), key=len, reverse=True))
    return re.compile(rf"""["']({names})["']""")


def sources():
    yield REPO / "Snakefile"
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in (".py", ".smk") and path.is_file():
                yield path


def test_no_quoted_method_name_outside_the_registry():
    quoted = quoted_names()
    found = []
    for path in sources():
        where = path.relative_to(REPO).as_posix()
        if where.startswith(EXEMPT):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found += [f"{where}:{number}: {match.group(0)}" for match in quoted.finditer(line)]
    assert not found, "quoted method names outside earlyexit/methods/:\n" + "\n".join(found)


def test_the_scan_sees_a_quoted_name():
    """The pattern itself: a line naming a method in quotes is caught, a bare word or a longer name is not."""
    quoted = quoted_names()
    assert quoted.search('runs["method"] == "hashee"') and quoted.search("kind='truncated'")
    assert not quoted.search("truncated to max_len") and not quoted.search('"hashee_seq2seq"')
