"""The exit schedule of a padded batch, computed on the host before the forward.

Tokens are reordered so that, in every row, the tokens still active at layer l form a PREFIX:
a stable sort by exit layer, descending (padding, exit layer 0, goes last). Layer l then only
needs the first `active_counts[l-1]` positions as queries, a plain slice with a Python int, so
the forward never asks the device how many tokens are left (no device-to-host sync).
Attention has no positional term after the embeddings, so the reordering changes nothing.
Where rows have different numbers of active tokens, `active_index[l-1]` lists the flat positions
(into the [B, width] prefix) of the tokens really active at layer l, so the token-wise work
(Q, output projection, LayerNorms, FFN) runs on exactly those tokens; `token_index[l-1]` lists
the same tokens' flat positions in the whole [B, T] batch, for a forward that updates its states
in place (inference).
[CLS] exits at the last layer and is first, so the stable sort keeps it at position 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ExitSchedule:
    permutation: torch.Tensor   # [B, T] long: sorted position -> original position
    exit_layers: torch.Tensor   # [B, T] long: exit layer of each sorted position (0 = padding)
    key_mask: torch.Tensor      # [B, 1, 1, T] bool: sorted position is a real token (attend to it)
    active_counts: list[int]    # per layer: widest active prefix over the batch
    prefix_exact: list[bool]    # per layer: every row has exactly that many active tokens (no packing needed)
    identity: bool              # no reordering needed (e.g. the full model)
    active_index: list[torch.Tensor | None]  # per layer: flat [B*width] indices of active tokens, None if exact
    token_index: list[torch.Tensor | None]   # per layer: the same tokens' flat [B*T] indices, None if exact

    def to(self, device: torch.device | str) -> "ExitSchedule":
        return ExitSchedule(self.permutation.to(device, non_blocking=True),
                            self.exit_layers.to(device, non_blocking=True),
                            self.key_mask.to(device, non_blocking=True),
                            self.active_counts, self.prefix_exact, self.identity,
                            [None if i is None else i.to(device, non_blocking=True) for i in self.active_index],
                            [None if i is None else i.to(device, non_blocking=True) for i in self.token_index])


def build_exit_schedule(exit_layers: torch.Tensor, num_layers: int) -> ExitSchedule:
    """`exit_layers`: [B, T] long on the CPU, 1..num_layers for real tokens, 0 for padding."""
    if exit_layers.dim() != 2:
        raise ValueError("exit_layers must be [batch, seq_len]")
    if int(exit_layers.max()) > num_layers or int(exit_layers.min()) < 0:
        raise ValueError(f"exit layers must lie in 0..{num_layers}")
    sorted_layers, permutation = torch.sort(exit_layers, dim=1, descending=True, stable=True)
    per_row = torch.stack([(sorted_layers >= layer).sum(1) for layer in range(1, num_layers + 1)])  # [L, B]
    widest = per_row.max(1).values
    real = sorted_layers > 0
    identity = bool((permutation == torch.arange(exit_layers.shape[1])).all())
    exact = (per_row == widest[:, None]).all(1).tolist()
    active_index = [
        None if exact[l] else (sorted_layers[:, : int(widest[l])] > l).reshape(-1).nonzero().squeeze(1)
        for l in range(num_layers)
    ]
    seq_len = exit_layers.shape[1]
    # row b, prefix position t: b * width + t in the prefix, b * seq_len + t in the batch
    token_index = [None if i is None else i + (i // int(widest[l])) * (seq_len - int(widest[l]))
                   for l, i in enumerate(active_index)]
    return ExitSchedule(
        permutation=permutation,
        exit_layers=sorted_layers,
        key_mask=real[:, None, None, :],
        active_counts=widest.tolist(),
        prefix_exact=exact,
        identity=identity,
        active_index=active_index,
        token_index=token_index,
    )
