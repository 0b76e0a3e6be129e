"""Alternative suggestions: the model's other likely beginnings, each continued greedily.

The best suggestion is the greedy one. Each alternative starts with
another of the likeliest first tokens (`Engine.next_token_choices`) and
goes on greedily from there, so the alternatives are deterministic and
differ from the first character on. The prompt's keys/values are kept by
the engine, so an alternative costs its own tokens only, and the engine
writes them together (`Engine.generate_branches`: one batch with torch). Each is stopped,
timed and post-processed as the best one is; those that come out empty or
equal to one already found are dropped, and a few more beginnings than
asked for are tried so that duplicates do not leave the list short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from code_llama_ls.cancel import CancelToken
from code_llama_ls.engine.base import Engine, GenerationParams
from code_llama_ls.pipeline.finish import Finisher
from code_llama_ls.pipeline.postprocess import StopCheck
from code_llama_ls.pipeline.prompt import Prompt
from code_llama_ls.pipeline.time_budget import TimeBudget
from code_llama_ls.tokens.tokenizer import decode_continuation

SPARE_BEGINNINGS = 2
"""Beginnings tried beyond those asked for, in case some give nothing new."""


class Branches:
    """Writes the alternatives of one prompt's greedy suggestion."""

    def __init__(
        self,
        engine: Engine,
        prompt: Prompt,
        params: GenerationParams,
        time_budget_ms: int,
        finish: Finisher,
    ) -> None:
        """`time_budget_ms`: each alternative's own (see `TimeBudget`)."""
        self._engine = engine
        self._prompt = prompt
        self._params = params
        self._time_budget_ms = time_budget_ms
        self._finish = finish

    def distinct_from(
        self, best: str, best_first_id: int, count: int, cancel: CancelToken
    ) -> tuple[str, ...]:
        """Up to `count` suggestions unlike `best` and each other, likeliest beginning first.

        Written in waves of as many as are still missing (a batch, where the
        engine batches), until enough are found or the beginnings run out.
        """
        wanted = count + 1 + SPARE_BEGINNINGS
        beginnings = [
            first_id
            for first_id in self._engine.next_token_choices(self._prompt.ids, wanted)
            if first_id != best_first_id and first_id not in self._params.stop_ids
        ]
        found: list[str] = []
        tried = 0
        while len(found) < count and tried < len(beginnings) and not cancel.cancelled:
            wave = beginnings[tried : tried + count - len(found)]
            tried += len(wave)
            for text in self.write(wave, cancel):
                if text and text != best and text not in found:
                    found.append(text)
        return tuple(found[:count])

    def write(self, first_ids: Sequence[int], cancel: CancelToken) -> list[str]:
        """The suggestions that begin with each of `first_ids`, post-processed."""
        tokenizer = self._engine.tokenizer
        prompt, finish = self._prompt, self._finish
        heads = [decode_continuation(tokenizer, [first_id]) for first_id in first_ids]
        budgets = [TimeBudget(self._time_budget_ms) for _ in first_ids]

        def on_text_for(branch: int) -> Callable[[str], bool]:
            stop_check = StopCheck(finish.cursor, sees_suffix=finish.sees_suffix)
            head, budget = heads[branch], budgets[branch]

            def seen(text: str) -> bool:
                text = prompt.strip_healed(head + text)
                return stop_check(text) or budget(text)

            return seen

        generations = self._engine.generate_branches(
            prompt.ids, first_ids, self._params, cancel, on_text_for
        )
        return [
            finish(decode_continuation(tokenizer, [first_id, *generation.token_ids]), budget)
            for first_id, generation, budget in zip(first_ids, generations, budgets, strict=False)
        ]
