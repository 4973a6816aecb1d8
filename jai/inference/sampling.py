"""What both twins' generators share: the sampling parameters, their checks, and prompt bookkeeping.

No framework is imported here. The decoding loop (jai/inference/decode.py) and the twins' samplers
(jai_mlx/generate.py, jai_torch/generate.py) turn a `SamplingConfig` into tokens the same way:

    logits (float32) -> penalties -> / temperature -> top-k -> top-p -> sample    (temperature 0: argmax)

(penalties: repetition, frequency/presence, no-repeat N-grams; jai/inference/penalties.py.)

Greedy decoding agrees between the twins; sampled tokens need not (their random streams differ), but a
given twin with a given seed always draws the same tokens.
"""

from __future__ import annotations

import dataclasses
import operator
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from jai.errors import InputError

MAX_SEED = 2**63 - 1  # both twins accept it: torch's manual_seed and MLX's random.key take a uint64
# A temperature is 0 (greedy) or in [MIN_TEMPERATURE, MAX_TEMPERATURE], for every caller (jai sample, the
# server, jai eval): one rule, here. Dividing float32 logits by a tiny or denormal temperature overflows to
# inf, and the softmax of that is NaN; well before that, sampling is the argmax anyway (at 1e-3 a token
# 0.01 below the best is e**-10 times as likely), so such a value is a mistake to report, not to guess at.
# Above MAX_TEMPERATURE every token is about as likely as any other.
MAX_PENALTY = 2.0  # OpenAI's range for frequency_penalty and presence_penalty: [-2, 2]
MIN_TEMPERATURE = 1e-3
MAX_TEMPERATURE = 100.0


class SamplingError(InputError):
    """Sampling parameters or prompts that cannot be generated from; the message says which and why."""


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick each new token.

    temperature     divides the logits; 0 means greedy (argmax), and top_k / top_p are then moot;
                    else between MIN_TEMPERATURE and MAX_TEMPERATURE (`check_temperature`)
    top_k           keep only the k most likely tokens (None: all)
    top_p           nucleus: keep the smallest set of most likely tokens whose probability sums to >= top_p
                    (None or 1.0: all)
    max_new_tokens  how many tokens to generate at most, a stop id included
    seed            seeds the twin's random stream; None draws a fresh seed for every call
    stop_ids        a sequence ends at the first of these it samples; the stop id itself is not returned
    repetition_penalty    transformers' (> 0; 1: none): a held token's logit / it if positive, * it if not
    no_repeat_ngram_size  transformers' (0: none): never complete an N-gram the row already holds
    frequency_penalty     OpenAI's, in [-2, 2]: logit -= penalty * times the token was generated
    presence_penalty      OpenAI's, in [-2, 2]: logit -= penalty if the token was generated
    penalize_prompt       whether the prompt counts as held for the first two (transformers: it does;
                          JAI's default: it does not; why: jai/inference/penalties.py)
    """

    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    max_new_tokens: int = 200
    seed: int | None = None
    stop_ids: tuple[int, ...] = ()
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    penalize_prompt: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", check_temperature(self.temperature))
        if self.top_k is not None and not _is_int(self.top_k, minimum=1):
            raise SamplingError(f"top_k must be a positive integer or None, got {self.top_k!r}")
        p = self.top_p
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0):
            raise SamplingError(f"top_p must be a number in (0, 1] or None, got {p!r}")  # NaN fails too
        if not _is_int(self.max_new_tokens, minimum=1):
            raise SamplingError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if self.seed is not None and not (_is_int(self.seed, minimum=0) and self.seed <= MAX_SEED):
            raise SamplingError(f"seed must be an integer in [0, 2**63) or None, got {self.seed!r}")
        if isinstance(self.stop_ids, (str, bytes)) or not isinstance(
            self.stop_ids, (Sequence, set, frozenset)
        ):
            raise SamplingError(f"stop_ids must be a sequence of token ids, got {self.stop_ids!r}")
        try:
            stop_ids = tuple(operator.index(s) for s in self.stop_ids)
        except TypeError:
            raise SamplingError(f"stop_ids must be integers, got {self.stop_ids!r}") from None
        if any(s < 0 for s in stop_ids):
            raise SamplingError(f"stop_ids must be non-negative, got {self.stop_ids!r}")
        object.__setattr__(self, "stop_ids", stop_ids)
        r = self.repetition_penalty
        if not _is_number(r) or not 0.0 < r < float("inf"):
            raise SamplingError(f"repetition_penalty must be a positive number (1: none), got {r!r}")
        if not _is_int(self.no_repeat_ngram_size, minimum=0):
            n = self.no_repeat_ngram_size
            raise SamplingError(f"no_repeat_ngram_size must be an integer >= 0 (0: none), got {n!r}")
        for name in ("frequency_penalty", "presence_penalty"):
            v = getattr(self, name)
            if not _is_number(v) or not -MAX_PENALTY <= v <= MAX_PENALTY:
                raise SamplingError(f"{name} must be a number in [-2, 2] (0: none), got {v!r}")
        if not isinstance(self.penalize_prompt, bool):
            raise SamplingError(f"penalize_prompt must be true or false, got {self.penalize_prompt!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def penalized(self) -> bool:
        """Whether any penalty is on (a row then keeps a `jai.inference.penalties.History`)."""
        return (
            self.repetition_penalty != 1.0
            or self.no_repeat_ngram_size > 0
            or self.frequency_penalty != 0.0
            or self.presence_penalty != 0.0
        )

    def replace(self, **changes) -> SamplingConfig:
        return dataclasses.replace(self, **changes)


def check_temperature(t: object) -> float:
    """The one rule for a temperature: 0 (greedy), or a number in [MIN_TEMPERATURE, MAX_TEMPERATURE]."""
    ok = not isinstance(t, bool) and isinstance(t, (int, float))
    if not ok or not (t == 0 or MIN_TEMPERATURE <= t <= MAX_TEMPERATURE):  # NaN fails too
        allowed = f"0 (greedy) or between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}"
        raise SamplingError(f"temperature must be {allowed}, got {t!r}")
    return float(t)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def resolve_seed(seed: int | None) -> int:
    """The seed a twin's random stream starts from: the given one, or a fresh one when None."""
    return secrets.randbits(63) if seed is None else seed


def check_prompts(prompts: Sequence[Sequence[int]], vocab_size: int) -> list[list[int]]:
    """The prompts as lists of ints, after checking each is non-empty and inside the vocabulary."""
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or not prompts:
        raise SamplingError("prompts must be a non-empty list of token-id lists")
    out = []
    for i, ids in enumerate(prompts):
        try:
            if isinstance(ids, (str, bytes)):
                raise TypeError
            ids = [operator.index(t) for t in ids]  # ints, NumPy integers and the like
        except TypeError:
            raise SamplingError(f"prompt {i} must be a list of integer token ids, got {ids!r:.80}") from None
        if not ids:
            raise SamplingError(f"prompt {i} is empty: generation needs at least one token to condition on")
        bad = next((t for t in ids if not 0 <= t < vocab_size), None)
        if bad is not None:
            raise SamplingError(
                f"prompt {i}: token {bad!r} is not an id in the vocabulary (size {vocab_size})"
            )
        out.append(ids)
    return out


def room(block_size: int, max_new_tokens: int) -> int:
    """Positions kept free for generation: all of max_new_tokens, but never more than half the context."""
    return min(max_new_tokens, block_size // 2)


def crop_left(ids: Sequence[int], block_size: int, max_new_tokens: int) -> list[int]:
    """Crop a prompt from the LEFT so that `room(block_size, max_new_tokens)` positions stay free.

    The most recent tokens are the ones that matter for what comes next, so the start of a long prompt
    goes. A prompt that already leaves that room is returned whole. Capping the room at half the context
    keeps at least half a context of prompt however many tokens are asked for; generating past the end
    of the context then slides the window (see jai/inference/decode.py).
    """
    keep = block_size - room(block_size, max_new_tokens)
    return list(ids[-keep:]) if len(ids) > keep else list(ids)


def group_by_length(prompts: Sequence[Sequence[int]]) -> list[list[int]]:
    """Indices of the prompts, grouped by prompt length (groups in order of first appearance).

    A prefill runs whole windows through the model, so the rows that share one must share a length
    (jai/inference/decode.py); once in the KV cache, rows of any lengths decode together, each at its
    position.
    """
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(prompts):
        groups.setdefault(len(ids), []).append(i)
    return list(groups.values())
