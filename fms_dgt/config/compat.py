"""The task.yaml format as IBM fms-dgt's users write it, where it differs from ours.

Their task files load here unchanged where a builder of ours does the same job: a builder
YAML lists the fms-dgt names it answers to (``aliases:``), and its task class accepts
their fields where the meaning is the same. What has no counterpart is said, never
dropped silently and never a traceback:

* a field a task class knows but does not use (``COMPAT_FIELDS``: name -> why) is accepted
  with one warning naming it;
* a builder of theirs that nothing here does (below) is an error naming it and the closest
  builder we have;
* so is a block of theirs that nothing here does (a task's ``filters:`` or an override file
  naming it), with what to use instead.
"""

from __future__ import annotations

# fms-dgt builder name -> (what it does, the closest builder here or None)
UNSUPPORTED_BUILDERS: dict[str, tuple[str, str | None]] = {
    "time_series": ("SDForger time-series synthesis (fine-tunes a model on the series)", None),
}


def unsupported_builder(name: str) -> str | None:
    """Why fms-dgt's builder ``name`` cannot run here, with the closest builder (or None when
    ``name`` is not one of theirs)."""
    known = UNSUPPORTED_BUILDERS.get(name)
    if known is None:
        return None
    what, closest = known
    instead = f"; the closest builder here is '{closest}'" if closest else "; nothing here does that job"
    return f"'{name}' is IBM fms-dgt's builder for {what}, which has no counterpart here{instead}"


# fms-dgt block type -> what it is and what to use here instead
UNSUPPORTED_BLOCKS: dict[str, tuple[str, str]] = {
    "validators/granite_guardian": (
        "Granite Guardian validator (a guardian model rating requests harmful and replies safe)",
        "safety_refusal checks each refusal against its policy's reply_cannot_contain items; "
        "for a model's check too, add an llm_judge filter, whose engine may be a guardian "
        "model behind an OpenAI-compatible server",
    ),
}


def unsupported_block(kind: str) -> tuple[str, str] | None:
    """Why fms-dgt's block type ``kind`` cannot be built here and what to use instead (None
    when ``kind`` is not one of theirs)."""
    known = UNSUPPORTED_BLOCKS.get(kind)
    if known is None:
        return None
    what, instead = known
    return f"'{kind}' is IBM fms-dgt's {what}, which has no counterpart here", instead
