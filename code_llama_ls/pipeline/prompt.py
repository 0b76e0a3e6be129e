"""Prompt building: text around the cursor (or a chat) to token ids, within a token budget.

With `fim.py`, the only module that knows a model family's special tokens.
FIM layouts are built at token level, as each family documents them
(`fim.py`); Code Llama's exactly as Meta's reference
(`llama/generation.py: infilling_prompt_tokens`):

    PSM: [BOS, ▁<PRE>] + enc(prefix) + [▁<SUF>] + enc_infilling(suffix) + [▁<MID>]
    SPM: [BOS, ▁<PRE>, ▁<SUF>] + enc_infilling(suffix) + [▁<MID>] + enc(prefix)

A tokenizer without any family's FIM tokens gets a left-to-right prompt.
Windows are sized in the model's own tokens and cut at line boundaries. The
local window is counted from cached line pieces (`pieces.py`), so its cost
does not grow with the file and typing re-encodes only the cursor's line;
a chat message is cut by a search that encodes window-sized text a handful
of times (those searches, which know no special tokens, are `token_fit.py`).
Cross-file context, when there is some, goes before the prefix.

The prefix window's start moves in steps. The largest window that fits
would lose a line at its start for about every line typed at its end, and
the prompt's first tokens would change with it: the engine's prefix-KV
cache would then compute the whole prompt again once a line. Instead the
window starts at the first grid line at or after where the largest window
would start; grid line k is the first line start at or after `k *
window_step` characters into the text (for a completion, counted from
where its reach starts: `reach.py`). That line stays the start
while the user types, until the window from it no longer fits; then the
start jumps to the next grid line. The start thus moves once per step typed
(about a quarter of the budget), the window holds between about three
quarters and all of the budget, and the grid comes from the text alone:
the same text gives the same prompt in every request, across cancellations
and restarts. Small budgets (under MIN_STEPPED_LIMIT ids) keep the largest
window.

The file is a little over 500 lines because the completion windows, their
FIM or left-to-right layout and the chat prompt all count and place a model
family's special tokens, which only this module knows; split, those tokens
would be known in three files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from code_llama_ls.errors import PromptError
from code_llama_ls.pipeline.fim import FimFamily, FimMode, FimTokens
from code_llama_ls.pipeline.token_fit import Windows, fit_line, last_fitting, max_fitting
from code_llama_ls.tokens.pieces import PrefixPieces, SuffixPieces, chars_per_token
from code_llama_ls.tokens.tokenizer import TokenizerLike, encode_infilling, max_chars

# Lines longer than this are cut into chunks of this size when a chat message is trimmed.
_CHAT_CHUNK_CHARS = 200
_ELISION = "...\n"
STEP_SHARE = 0.25
"""Of the prefix budget, about how many tokens lie between two grid lines a window starts at."""
MIN_STEPPED_LIMIT = 128
"""Budgets smaller than this get the largest window that fits (a step would be a line or two)."""
MIN_STEPPED_FILL = 0.5
"""A grid start is only taken while its window keeps at least this share of the budget."""

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


class PromptFormat(StrEnum):
    """What kind of prompt a `Prompt` holds."""

    FIM_PSM = "fim-psm"
    FIM_SPM = "fim-spm"
    LEFT_TO_RIGHT = "left-to-right"
    CHAT = "chat"


@dataclass(frozen=True)
class Prompt:
    """Token ids ready for the model, with what post-processing needs to know."""

    ids: tuple[int, ...]
    format: PromptFormat
    stop_ids: frozenset[int]
    prefix: str  # the prefix window actually in the prompt ("" for chat)
    suffix: str  # the suffix window (also for left-to-right, where it is not in `ids`)
    healed: str = ""
    """Text cut from the end of the prefix that the model is expected to write first.

    Byte-level BPE vocabularies merge a newline with the indentation after it
    ("\n    " is one token, " x" another), so a prompt that ends in bare
    whitespace is one the model has never seen and it answers badly
    (typically with a newline and a dedent). Left-to-right prompts end after
    the last visible character instead, and the caller removes this text from
    the start of the generation.
    """
    family: FimFamily | None = None
    """The FIM family whose tokens the prompt has (None: left-to-right or chat)."""
    context_first: bool = False
    """The context comes before the FIM tokens (the family's repository format)."""

    def strip_healed(self, generated: str) -> str:
        """The generation without the part of `healed` it re-wrote."""
        common = 0
        limit = min(len(self.healed), len(generated))
        while common < limit and generated[common] == self.healed[common]:
            common += 1
        return generated[common:]


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR to LF: prompts are built from LF-only text."""
    if "\r" not in text:  # the usual case: no copy of a large document
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _normalize_pair(prefix: str, suffix: str) -> tuple[str, str]:
    # A cursor between CR and LF sits inside one line break, not between two.
    if prefix.endswith("\r") and suffix.startswith("\n"):
        suffix = suffix[1:]
    return normalize_newlines(prefix), normalize_newlines(suffix)


def _encode(tok: TokenizerLike, text: str) -> list[int]:
    # SentencePiece encodes "" as [] (no dummy space); so does this.
    return tok.encode(text) if text else []


def _bos(tok: TokenizerLike) -> list[int]:
    return [] if tok.bos_token_id is None else [tok.bos_token_id]


def fim_ids(
    tok: TokenizerLike, fim: FimTokens, prefix: str, suffix: str, mode: FimMode
) -> list[int]:
    """The family's infilling layout for this prefix and suffix alone; BOS only if the
    tokenizer adds one."""
    prefix, suffix = _normalize_pair(prefix, suffix)
    return fim.lay_out(_bos(tok), _encode(tok, prefix), encode_infilling(tok, suffix), mode)


Encoder = Callable[[str], list[int]]


def _tail_window(
    tok: TokenizerLike, pieces: PrefixPieces, limit: int, step: int = 0
) -> tuple[str, list[int]]:
    """The last whole lines of the text plus its unfinished last line, in <= limit ids.

    Counted over cached pieces: a few small encodes, not several of the window.
    `step`: the window starts at a grid line `step` characters apart (the
    module's docstring), as long as that keeps MIN_STEPPED_FILL of `limit`.
    """
    text = pieces.text
    if limit <= 0 or not text:
        return "", []
    cursor_start = text.rfind("\n") + 1
    cursor, cursor_ids = fit_line(tok, text[cursor_start:], limit, pieces.encode, keep_end=True)
    if cursor != text[cursor_start:] or cursor_start == 0:
        return cursor, cursor_ids
    # Line starts going back, while the pieces after each line's head alone still fit.
    starts = [cursor_start]
    while starts[-1] > 0 and pieces.lower_bound(starts[-1]) <= limit:
        starts.append(text.rfind("\n", 0, starts[-1] - 1) + 1)
    k = last_fitting(starts, pieces.count, limit)
    start = starts[k]
    moved = stepped_start(text, start, step)
    # Counts grow with the window, so a later start fits; a small window is no help.
    if moved != start and limit * MIN_STEPPED_FILL <= pieces.count(moved) <= limit:
        start = moved
    return text[start:], pieces.ids(start) if start != cursor_start else cursor_ids


def window_step(tok: TokenizerLike, limit: int) -> int:
    """Characters between the grid lines a prefix window of `limit` ids may start at; 0: none.

    STEP_SHARE of the budget, in characters at the tokenizer's usual
    characters per token on code (a constant per tokenizer): every prompt
    with the same budget has the same grid.
    """
    if limit < MIN_STEPPED_LIMIT:
        return 0
    return max(1, round(limit * STEP_SHARE * chars_per_token(tok)))


def stepped_start(text: str, start: int, step: int) -> int:
    """The first grid line at or after the line start `start`, else `start`.

    Grid line k is the first line start at or after offset k * `step` of
    `text` (line 0 is grid line 0); the last line's start is the last one
    looked at. `start` not at a line start (a cut cursor line) or no grid
    line in range leave `start` as it is.
    """
    if step <= 0 or start <= 0 or text[start - 1] != "\n":
        return start
    previous = text.rfind("\n", 0, start - 1) + 1
    if start // step > previous // step:  # a grid offset in (previous, start]: a grid line
        return start
    target = (start // step + 1) * step
    newline = text.find("\n", target - 1, text.rfind("\n") + 1)
    return start if newline < 0 else newline + 1


def _head_window(
    tok: TokenizerLike, text: str, limit: int, encode: Encoder
) -> tuple[str, list[int]]:
    """The rest of the cursor line plus the first whole lines of `text`, in <= limit ids."""
    if limit <= 0 or not text:
        return "", []
    first_end = text.find("\n")
    if first_end < 0:
        return fit_line(tok, text, limit, encode, keep_end=False)
    rest, rest_ids = fit_line(tok, text[:first_end], limit, encode, keep_end=False)
    if rest != text[:first_end]:
        return rest, rest_ids
    pieces = SuffixPieces(tok, text, encode)
    # Line ends going forward, while the whole pieces before each alone still fit.
    ends = [first_end, first_end + 1]
    while ends[-1] < len(text) and pieces.lower_bound(ends[-1]) <= limit:
        nxt = text.find("\n", ends[-1])
        ends.append(len(text) if nxt < 0 else nxt + 1)
    k = last_fitting(ends, pieces.count, limit)
    return text[: ends[k]], pieces.ids(ends[k]) if k else rest_ids


def _available(budget: int, overhead: int) -> int:
    if budget < overhead:
        raise PromptError(
            f"token budget {budget} leaves no room for the prompt's {overhead} fixed tokens: "
            "use a longer context or fewer max new tokens"
        )
    return budget - overhead


def fit_windows(
    tok: TokenizerLike,
    prefix: str,
    suffix: str,
    budget: int,
    *,
    overhead: int,
    suffix_share: float = 0.25,
    stepped: bool = True,
) -> tuple[str, str]:
    """Prefix and suffix windows whose ids, plus `overhead` fixed ids, fit in `budget`.

    The prefix keeps its last whole lines and the whole cursor line (cut from
    the left at a token boundary only when that line alone is too long),
    counted as `encode(window)`, starting at a grid line when `stepped`;
    the suffix keeps the rest of the cursor line and its first whole lines,
    counted as `encode_infilling(window)`, within `suffix_share` of the
    budget. What the suffix leaves goes to the prefix.
    """
    available = _available(budget, overhead)
    local = fit_local(tok, prefix, suffix, available, suffix_share=suffix_share, stepped=stepped)
    return local.prefix, local.suffix


Snap = Callable[[int], int]
"""Moves a window's cut (a string offset) to a nearby syntax boundary, never widening it."""


@dataclass(frozen=True)
class LocalWindow:
    """The text around the cursor that a completion prompt shows, and its ids."""

    prefix: str
    prefix_ids: list[int]
    suffix: str
    suffix_ids: list[int]
    """The suffix window's ids as a FIM prompt lays them out ([] for left-to-right)."""
    healed: str = ""


def completion_overhead(tok: TokenizerLike, *, use_fim: bool = True) -> int:
    """The fixed ids of a completion prompt: BOS and, for FIM, the three sentinels."""
    fim = use_fim and FimTokens.from_tokenizer(tok) is not None
    return len(_bos(tok)) + (3 if fim else 0)


def fit_local(
    tok: TokenizerLike,
    prefix: str,
    suffix: str,
    limit: int,
    *,
    use_fim: bool = True,
    continued: bool = False,
    suffix_share: float = 0.25,
    cut: bool = False,
    snap_start: Snap | None = None,
    snap_end: Snap | None = None,
    stepped: bool = True,
) -> LocalWindow:
    """Prefix and suffix windows in at most `limit` ids (fixed ids not included).

    `continued`: the prefix follows other text (context), so it is encoded
    without a leading dummy space. `cut`: the document goes on before
    `prefix` (the text a budget can reach was cut from it). `snap_start`/
    `snap_end` move the prefix window's start and the suffix window's end
    to syntax boundaries. `stepped`: the prefix window starts at a grid line
    of `prefix` (`window_step(tok, limit)` apart), else as far back as fits.
    """
    if not 0.0 <= suffix_share <= 1.0:
        raise ValueError(f"suffix_share must be within [0, 1], not {suffix_share}")
    prefix, suffix = _normalize_pair(prefix, suffix)

    def prefix_encode(s: str) -> list[int]:
        return encode_infilling(tok, s) if continued else _encode(tok, s)

    fim = use_fim and FimTokens.from_tokenizer(tok) is not None
    healed = "" if fim else _trailing_whitespace(prefix, cut=cut)
    prefix = prefix[: len(prefix) - len(healed)]
    suffix_encode = (lambda s: encode_infilling(tok, s)) if fim else prefix_encode
    sw, suffix_ids = _head_window(tok, suffix, int(limit * suffix_share), suffix_encode)
    if snap_end is not None and (end := snap_end(len(sw))) < len(sw):
        sw, suffix_ids = sw[:end], suffix_encode(sw[:end])
    prefix_limit = limit - len(suffix_ids) if fim else limit
    pieces = PrefixPieces(tok, prefix, prefix_encode)
    # The step is of the whole budget: it does not change with the suffix window.
    step = window_step(tok, limit) if stepped else 0
    pw, prefix_ids = _tail_window(tok, pieces, prefix_limit, step)
    window_start = len(prefix) - len(pw)
    if snap_start is not None and (start := snap_start(window_start)) > window_start:
        pw, prefix_ids = prefix[start:], pieces.ids(start)
    return LocalWindow(pw, prefix_ids, sw, suffix_ids if fim else [], healed)


def lay_out_completion(
    tok: TokenizerLike,
    local: LocalWindow,
    *,
    fim_mode: FimMode,
    context_ids: Sequence[int] = (),
    use_fim: bool = True,
) -> Prompt:
    """The prompt's ids: fixed tokens, context before the prefix, in the model's layout.

    PSM:  [BOS, ▁<PRE>] context prefix [▁<SUF>] suffix [▁<MID>]
    SPM:  [BOS, ▁<PRE>, ▁<SUF>] suffix [▁<MID>] context prefix
    left-to-right: [BOS] context prefix

    A family with a repository format (`FimTokens.frames_files`) has its
    context (the other files, then the cursor file's header) before its FIM
    tokens: [BOS] context [<fim_prefix>] prefix ...
    """
    bos = _bos(tok)
    fim = FimTokens.from_tokenizer(tok) if use_fim else None
    if fim is None:
        ids = [*bos, *context_ids, *local.prefix_ids]
        return Prompt(
            tuple(ids),
            PromptFormat.LEFT_TO_RIGHT,
            tok.stop_token_ids,
            local.prefix,
            local.suffix,
            local.healed,
        )
    if fim.frames_files:
        head, prefix_ids = [*bos, *context_ids], local.prefix_ids
    else:
        head, prefix_ids = bos, [*context_ids, *local.prefix_ids]
    mode = fim.mode(fim_mode)
    return Prompt(
        tuple(fim.lay_out(head, prefix_ids, local.suffix_ids, mode)),
        PromptFormat.FIM_SPM if mode is FimMode.SPM else PromptFormat.FIM_PSM,
        tok.stop_token_ids | fim.stop_ids,
        local.prefix,
        local.suffix,
        local.healed,
        fim.family,
        fim.frames_files,
    )


def build_completion_prompt(
    tok: TokenizerLike,
    prefix: str,
    suffix: str,
    *,
    fim_mode: FimMode,
    budget: int,
    use_fim: bool = True,
    suffix_share: float = 0.25,
    stepped: bool = True,
) -> Prompt:
    """The completion prompt for text around the cursor alone, in at most `budget` ids.

    FIM (PSM or SPM) when the tokenizer has Code Llama's FIM pieces and
    `use_fim` (Code Llama 34B has the pieces but cannot infill), else
    left-to-right: BOS + the prefix window; the suffix window is then kept
    in `Prompt.suffix` for post-processing only. `stepped`: see `fit_local`.
    """
    available = _available(budget, completion_overhead(tok, use_fim=use_fim))
    local = fit_local(
        tok,
        prefix,
        suffix,
        available,
        use_fim=use_fim,
        suffix_share=suffix_share,
        stepped=stepped,
    )
    prompt = lay_out_completion(tok, local, fim_mode=fim_mode, use_fim=use_fim)
    if len(prompt.ids) > budget:  # cannot happen: every part was counted as it is laid out
        raise PromptError(f"internal error: prompt of {len(prompt.ids)} ids exceeds {budget}")
    return prompt


def _trailing_whitespace(prefix: str, *, cut: bool = False) -> str:
    """Whitespace the cursor's line ends in, with its newline when the line is blank.

    "return " gives " "; a blank indented line gives "\n    ", and an empty
    line at column 0 gives "\n", so the prompt ends right after the last
    visible character, where tokens end naturally. (Ending on a bare line
    break, a model tends to start a comment or dedent out of the block.)
    The first line of a document keeps its newline (unless `cut`: text
    comes before `prefix`).
    """
    stripped = prefix.rstrip(" \t")
    healed = prefix[len(stripped) :]
    if stripped.endswith("\n") and (len(stripped) > 1 or cut):
        healed = "\n" + healed
    return healed


def _instruct_ids(tok: TokenizerLike, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """Code Llama - Instruct's [INST] format, as Meta's `chat_completion` builds it."""
    dialog = [dict(m) for m in messages]
    if dialog and dialog[0]["role"] == "system":
        if len(dialog) < 2:
            raise PromptError("a chat needs a user message after the system message")
        first = dialog[1]
        content = B_SYS + dialog[0]["content"] + E_SYS + first["content"]
        dialog = [{"role": first["role"], "content": content}, *dialog[2:]]
    roles_ok = all(m["role"] == "user" for m in dialog[::2]) and all(
        m["role"] == "assistant" for m in dialog[1::2]
    )
    if not dialog or not roles_ok or dialog[-1]["role"] != "user":
        raise PromptError(
            "chat messages must be an optional 'system', then 'user' and 'assistant' "
            "alternating, ending with 'user'"
        )
    bos = _bos(tok)
    ids: list[int] = []
    for question, answer in zip(dialog[:-1:2], dialog[1::2], strict=True):
        text = f"{B_INST} {question['content'].strip()} {E_INST} {answer['content'].strip()} "
        ids += [*bos, *tok.encode(text), _eos(tok)]
    return [*ids, *bos, *tok.encode(f"{B_INST} {dialog[-1]['content'].strip()} {E_INST}")]


def _eos(tok: TokenizerLike) -> int:
    eos = tok.token_to_id("</s>")
    if eos is not None and eos in tok.stop_token_ids:
        return eos
    if len(tok.stop_token_ids) == 1:
        return next(iter(tok.stop_token_ids))
    raise PromptError("cannot tell which stop token ends an assistant turn in this chat")


def _chat_ids(tok: TokenizerLike, messages: Sequence[Mapping[str, str]]) -> list[int]:
    templated = tok.apply_chat_template(messages)
    return templated if templated is not None else _instruct_ids(tok, messages)


def _chunks(text: str, size: int) -> list[str]:
    """Lines of text, with lines longer than `size` cut into chunks of `size` characters."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        out += [line[i : i + size] for i in range(0, len(line), size)]
    return out


def build_chat_prompt(
    tok: TokenizerLike, messages: Sequence[Mapping[str, str]], *, budget: int
) -> Prompt:
    """A chat prompt ready for the assistant's reply, in at most `budget` ids.

    The tokenizer's chat template when it has one, else Code Llama -
    Instruct's format. When too long, the longest user message loses lines
    from its middle (head and tail kept, the gap marked with "...").
    """
    msgs = [{"role": m["role"], "content": normalize_newlines(m["content"])} for m in messages]
    users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
    # Longer text surely needs more ids than the budget: it is not encoded whole.
    if not users or sum(len(m["content"]) for m in msgs) <= max_chars(tok, budget):
        ids = _chat_ids(tok, msgs)
        if len(ids) <= budget:
            return Prompt(tuple(ids), PromptFormat.CHAT, tok.stop_token_ids, "", "")
        if not users:
            raise PromptError(
                f"the chat prompt needs {len(ids)} tokens, over the budget of {budget}"
            )
    target = max(users, key=lambda i: len(msgs[i]["content"]))
    # Cut points: line ends, and inside long lines often enough for a small budget.
    units = _chunks(msgs[target]["content"], max(16, min(_CHAT_CHUNK_CHARS, budget // 4)))
    sizes = [0]
    for unit in units:
        sizes.append(sizes[-1] + len(unit))

    def content(n: int) -> str:
        tail = n // 4
        return "".join(units[: n - tail]) + _ELISION + "".join(units[len(units) - tail :])

    def measure(n: int) -> list[int]:
        trial = [*msgs[:target], {"role": "user", "content": content(n)}, *msgs[target + 1 :]]
        return _chat_ids(tok, trial)

    base = measure(0)
    measured = {0: base}
    if len(base) > budget:
        raise PromptError(
            f"the chat prompt needs {len(base)} tokens even without its longest message, "
            f"over the budget of {budget}"
        )
    windows = Windows(  # marks: how many units are kept
        0,
        lambda n: n + 1 if n + 1 < len(units) else None,
        lambda n: sizes[n],
        max_chars(tok, budget),
    )
    _, ids = max_fitting(windows, lambda n: measured[n] if n in measured else measure(n), budget)
    return Prompt(tuple(ids), PromptFormat.CHAT, tok.stop_token_ids, "", "")
