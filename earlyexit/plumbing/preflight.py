"""Checks run when a real (non-dry) workflow run starts: fail at once, in one line, when the
preset needs a GPU or the HF hub and this machine has neither."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


def preflight_errors(requirements: dict) -> list[str]:
    errors = []
    if requirements.get("gpu"):
        import torch

        if not torch.cuda.is_available():
            errors.append("this preset needs a CUDA GPU (requirements.gpu: true) and torch sees none; "
                          "run the offline demo instead: --configfile config/presets/demo.yaml")
    if requirements.get("network"):
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            errors.append("this preset downloads from the HF hub (requirements.network: true) but HF_HUB_OFFLINE=1")
        else:
            host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
            try:
                socket.getaddrinfo(host, 443)
            except OSError:
                errors.append(f"this preset downloads from the HF hub (requirements.network: true) but {host} "
                              "cannot be resolved; use data.source: dir with local ELUE files, or the demo preset")
    return errors
