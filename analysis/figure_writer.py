"""The one figure writer: a matplotlib figure to PNG and PDF, each atomically and byte-stable
(no timestamps or software versions in the files, so an unchanged figure rewrites identically)."""

from __future__ import annotations

import os

from earlyexit.plumbing.files import atomic_path

PNG_DPI = 150


def save_figure(fig, out_png: str | os.PathLike, out_pdf: str | os.PathLike) -> None:
    """Write `fig` as PNG and PDF, then close it (also when writing fails)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png", dpi=PNG_DPI, bbox_inches="tight", metadata={"Software": None})
        with atomic_path(out_pdf) as tmp:
            fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    finally:
        plt.close(fig)
