"""Read the cells back out of the table writer's Markdown and LaTeX, so tests can compare them."""

import re

_TEX_UNESCAPES = [(r"$\pm$", "±"), (r"$\times$", "×"), ("--", "–"), (r"\textbackslash{}", "\\"),
                  (r"\textasciitilde{}", "~"), (r"\textasciicircum{}", "^"), (r"\&", "&"), (r"\%", "%"),
                  (r"\$", "$"), (r"\#", "#"), (r"\_", "_"), (r"\{", "{"), (r"\}", "}")]


def md_table(text: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a Markdown pipe table; a row-group line reads ["*title*"]."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    split = [[c.strip().replace(r"\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] for line in lines]
    header, body = split[0], split[2:]
    rows = [[cells[0]] if cells[0].startswith("*") and not any(cells[1:]) else cells for cells in body]
    return header, rows


def _untex(cell: str) -> str:
    for tex, plain in _TEX_UNESCAPES:
        cell = cell.replace(tex, plain)
    return cell.strip()


def tex_table(text: str) -> tuple[list[str], list[list[str]]]:
    """(last header line, rows) of the tabular between \\midrule and \\bottomrule; a row-group line
    reads ["*title*"]."""
    lines = text.splitlines()
    start, end = lines.index(r"\midrule"), lines.index(r"\bottomrule")
    header = [_untex(c) for c in re.split(r"(?<!\\)&", lines[start - 1].removesuffix(r" \\"))]
    rows = []
    for line in lines[start + 1:end]:
        if line == r"\midrule":
            continue
        group = re.fullmatch(r"\\multicolumn\{\d+\}\{l\}\{\\textit\{(.*)\}\} \\\\", line)
        if group:
            rows.append([f"*{_untex(group.group(1))}*"])
        else:
            rows.append([_untex(c) for c in re.split(r"(?<!\\)&", line.removesuffix(r" \\"))])
    return header, rows
