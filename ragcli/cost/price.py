"""One model's price: dollars per million tokens of each kind, where it came from and as of when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragcli.types import Usage

if TYPE_CHECKING:
    from ragcli.cost.genai_price_source import GenaiModel


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens of one model, and the source and date of those numbers.

    A price from genai-prices carries `genai`: it is then computed by genai-prices (tiered long-context rates,
    batch rates per model); the per-million numbers here are its base-tier rates, for display and estimates.
    """

    model: str
    input: float
    output: float
    cached_input: float | None = None
    """Input tokens read from the provider's prompt cache; `None` means the same as `input`."""
    batch_discount: float = 0.0
    """Fraction taken off by the provider's batch API (0.5 = half price), on every kind of token."""
    context_window: int | None = None
    source: str = "shipped"
    """Where the price came from: `config`, `shipped` (prices.yaml), `genai-prices`, `litellm`."""
    cache_write: float | None = None
    """Input tokens written to the prompt cache with the 5-minute TTL; `None` means the same as `input`."""
    cache_write_1h: float | None = None
    """Input tokens written with the 1-hour TTL; `None` means the 5-minute write price."""
    as_of: str = ""
    """When these numbers were true (a date, or the version of the source that ships them)."""
    provider: str = ""
    genai: GenaiModel | None = None

    def cost_of(self, usage: Usage) -> float:
        """Dollars of one call's usage. `input_tokens` includes cache reads and writes (see `Usage`)."""
        if self.genai is not None:
            from ragcli.cost.genai_price_source import cost

            return cost(self.genai, usage)
        total_in = max(usage.input_tokens, 0)
        read = min(max(usage.cached_tokens, 0), total_in)
        write = min(max(usage.cache_write_tokens, usage.cache_write_1h_tokens, 0), total_in - read)
        write_1h = min(max(usage.cache_write_1h_tokens, 0), write)
        plain = total_in - read - write
        read_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write is None else self.cache_write
        write_1h_price = write_price if self.cache_write_1h is None else self.cache_write_1h
        usd = (
            plain * self.input
            + read * read_price
            + (write - write_1h) * write_price
            + write_1h * write_1h_price
            + max(usage.output_tokens, 0) * self.output
        ) / 1e6
        # Providers apply the batch discount to cache reads and writes too (Anthropic: "multipliers stack")
        return usd * (1.0 - self.batch_discount) if usage.batch else usd

    def cost(
        self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, batch: bool = False
    ) -> float:
        """Dollars for one call. `input_tokens` includes the cached ones (as OpenAI's `prompt_tokens` does)."""
        return self.cost_of(Usage(input_tokens, cached_tokens, output_tokens, None, 1, batch=batch))
