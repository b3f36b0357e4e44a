"""What requests cost: prices per million tokens, per engine.

An engine block may give its prices (``pricing: {input_per_mtok: 0.15, output_per_mtok: 0.6}``,
US dollars per million prompt and completion tokens). Without them, a hosted model whose
name is in ``KNOWN_PRICES`` gets those list prices; any other model (a local vLLM, a
server of your own) costs nothing. Answers served from the response cache cost nothing.

The table holds providers' published list prices at the time of writing: prices change, so
give ``pricing:`` when the figure matters (it always wins over the table).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fms_dgt.engines.types import LMResult

MTOK = 1_000_000


class Pricing(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0, description="price of a million prompt tokens")
    output_per_mtok: float = Field(ge=0, description="price of a million completion tokens")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / MTOK


# model name (as sent to the provider, without a "provider/" prefix) -> list price
KNOWN_PRICES: dict[str, Pricing] = {
    "gpt-4o": Pricing(input_per_mtok=2.50, output_per_mtok=10.00),
    "gpt-4o-mini": Pricing(input_per_mtok=0.15, output_per_mtok=0.60),
    "gpt-4.1": Pricing(input_per_mtok=2.00, output_per_mtok=8.00),
    "gpt-4.1-mini": Pricing(input_per_mtok=0.40, output_per_mtok=1.60),
    "gpt-4.1-nano": Pricing(input_per_mtok=0.10, output_per_mtok=0.40),
    "o3-mini": Pricing(input_per_mtok=1.10, output_per_mtok=4.40),
    "o4-mini": Pricing(input_per_mtok=1.10, output_per_mtok=4.40),
}


def price_for(model: str, given: Pricing | None, hosted: bool) -> Pricing | None:
    """The prices of ``model``: ``given`` if any; else the table's for a hosted model (an
    engine that talks to a provider); else None (free)."""
    if given is not None:
        return given
    if not hosted:
        return None
    return KNOWN_PRICES.get(model.rsplit("/", 1)[-1].lower())


def result_cost(pricing: Pricing | None, result: LMResult) -> float:
    """What ``result`` cost: nothing when it came from the cache or the model is free."""
    if pricing is None or result.cached:
        return 0.0
    return pricing.cost(result.prompt_tokens, result.completion_tokens)
