"""Every snakemake command shown in README.md and docs/*.md parses as the user means it: a target
written after `--configfile FILE` would be read as a second config file (a newcomer copying the
command gets a traceback), and every config file it names exists. (The commands' dry runs:
../shared/tools/doc-commands.py; the demo's and the paper's are dry-run in tests/test_workflow.py.)"""

import re
import shlex

import pytest

from tests.conftest import REPO


def documented_commands() -> list[tuple[str, str]]:
    commands = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                if re.match(r"^(\w+=\S+\s+)*snakemake\b", line):
                    commands.append((path.name, line))
        # inline `snakemake ...` spans too (a run line in prose)
        commands += [(path.name, " ".join(span.split())) for span in re.findall(r"`(snakemake [^`]+)`", text, re.S)]
    return commands


def config_files(argv: list[str]) -> list[str]:
    """The paths snakemake reads as config files: every word after --configfile up to the next option."""
    files, taking = [], False
    for word in argv:
        if word.startswith("--configfile="):
            files.append(word.split("=", 1)[1])
            taking = False
        elif word in ("--configfile", "--configfiles"):
            taking = True
        elif word.startswith("-"):
            taking = False
        elif taking:
            files.append(word)
    return files


def test_the_docs_show_commands():
    assert len(documented_commands()) >= 5


@pytest.mark.parametrize("where,command", documented_commands())
def test_a_documented_command_names_only_config_files_after_configfile(where, command):
    for path in config_files(shlex.split(command)):
        assert path.endswith((".yaml", ".yml")) and (REPO / path).is_file(), \
            f"{where}: `{command}` gives {path} to --configfile (put targets before it)"


def test_a_target_after_configfile_is_caught():
    argv = shlex.split("snakemake --cores 2 --configfile config/presets/demo.yaml results/x.md")
    assert config_files(argv) == ["config/presets/demo.yaml", "results/x.md"]
