"""The optimisation loop shared by ragcli's fine-tuning recipes (reranker, cache verifier, embedder).

AdamW with weight decay 0.01, linear warm-up over the first 10 % of steps then linear decay to zero, gradients
clipped at norm 1, and a smoothed loss (exponential average, 0.9) reported after every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

StepHook = Callable[[int, int, float], None]
"""Called with (step, total steps, smoothed loss) after each batch."""


class Trainer:
    """Steps `model`'s parameters for `steps` batches; `step(loss)` after each forward pass."""

    def __init__(
        self, model: Any, *, steps: int, learning_rate: float, on_step: StepHook | None = None
    ) -> None:
        import torch

        self.model = model
        self.steps = steps
        self.done = 0
        self.loss = 0.0
        self.on_step = on_step
        self._opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
        warmup = max(1, steps // 10)
        self._sched = torch.optim.lr_scheduler.LambdaLR(
            self._opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
        )

    def step(self, loss: Any) -> None:
        """Backpropagate `loss`, clip, update, and report the smoothed loss."""
        import torch

        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self._opt.step()
        self._sched.step()
        self._opt.zero_grad()
        self.done += 1
        value = float(loss.item())
        self.loss = value if self.done == 1 else 0.9 * self.loss + 0.1 * value
        if self.on_step is not None:
            self.on_step(self.done, self.steps, self.loss)
