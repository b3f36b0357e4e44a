"""The ``inference`` builder: plain model inference over a dataset.

Each row's prompt (the ``input_field`` column, or ``prompt_template`` rendered with the
row's columns) is one request, as a user message after the optional ``system_prompt``
(``mode: chat``) or as a raw prompt (``mode: completion``), sampled as the builder YAML's
``llm1`` block says with the task's ``sampling`` on top. Each answer is a record holding
the input row whole (``row``), the answer under ``output_field`` and ``model_name``. An
empty answer is a rejection; a failed request is in ``failed``.
"""

from __future__ import annotations

from typing import Any

from fms_dgt import LMRequest, LMResult, PromptTransformer, Rejection, register_data_builder

from .task import InferenceTask


@register_data_builder("inference")
class Inference(PromptTransformer):
    TASK_TYPE = InferenceTask
    task: InferenceTask

    def prompt(self, row: Any) -> str:
        return self.task.render(row)

    def prompt_hash(self) -> str:
        return self.task.template_hash

    async def ask(self, prompt: str | list[dict[str, Any]], metadata: dict[str, Any]) -> LMResult:
        task, engine = self.task, self.engine
        params = engine.default_params.merged(**task.sampling)
        assert isinstance(prompt, str)
        if task.mode == "completion":
            request = LMRequest(prompt=prompt, params=params, metadata=metadata)
        else:
            messages = [{"role": "user", "content": prompt}]
            if task.system_prompt:
                messages.insert(0, {"role": "system", "content": task.system_prompt})
            request = LMRequest(messages=messages, params=params, metadata=metadata)
        return await engine.agenerate(request)

    def answers(self, result: LMResult) -> list[Any]:
        return list(enumerate(result.texts))  # (sample index, text)

    def parse(self, answer: tuple[int, str], row: Any) -> Any:
        index, text = answer
        if not text.strip():
            return Rejection(
                "empty output", raw={"input_id": row.id, "row": row.row, "output": text}, block="inference"
            )
        out: dict[str, Any] = {"row": row.row, self.task.output_field: text.strip()}
        if index:
            out["lineage"] = {"sample": index}
        return out

    def records(self, produced: Any, result: LMResult, raw: Any, **lineage: Any) -> list[Any]:
        if isinstance(produced, dict):  # every record names the model that wrote it
            produced = {**produced, "model_name": result.model}
        return super().records(produced, result, raw, **lineage)
