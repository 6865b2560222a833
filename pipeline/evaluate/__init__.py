"""Stage 5, eval: a candidate model scored against production on the eval split, task by task (body: `stage.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.evaluate.stage import EvalConfig, EvalResult, evaluate, export_prompts

__all__ = ["EvalConfig", "EvalResult", "evaluate", "export_prompts"]


def __getattr__(name: str) -> Any:
    # The stage loads on first use: importing one module of this package, or `pipeline`, stays light.
    if name in __all__:
        from pipeline.evaluate import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
