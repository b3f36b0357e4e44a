"""The task.yaml format as IBM fms-dgt's users write it, where it differs from ours.

Their task files load here unchanged where a builder of ours does the same job: a builder
YAML lists the fms-dgt names it answers to (``aliases:``), and its task class accepts
their fields where the meaning is the same. What has no counterpart is said, never
dropped silently and never a traceback:

* a field a task class knows but does not use (``COMPAT_FIELDS``: name -> why) is accepted
  with one warning naming it;
* a builder of theirs that nothing here does (below) is an error naming it and the closest
  builder we have.
"""

from __future__ import annotations

# fms-dgt builder name -> (what it does, the closest builder here or None)
UNSUPPORTED_BUILDERS: dict[str, tuple[str, str | None]] = {
    "time_series": ("SDForger time-series synthesis (fine-tunes a model on the series)", None),
    "tool_calling/multi_turn/stateless": ("multi-turn tool-calling conversations", "conversation"),
    "public/safety/refusal": ("refusals to requests a risk policy forbids", "self_instruct"),
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
