"""Request bodies: what each route accepts, checked before any work is done (422 naming the field).

Strict: "5" is not a number and true is not an int; NaN and Infinity are refused; a field nobody
defined is a typo and refused rather than ignored. Every string must be valid Unicode: a lone surrogate
("\\ud800", legal in JSON, illegal in UTF-8) would otherwise fail deep in the tokenizer.
The OpenAI fields JAI does not implement are accepted only at their neutral value (n=1, no logprobs,
no logit_bias), so a client that relies on them hears so instead of getting something else. The OpenAI
routes take OpenAI's frequency_penalty and presence_penalty ([-2, 2]); /generate takes transformers'
repetition_penalty and no_repeat_ngram_size (what each does: jai/inference/penalties.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from jai.inference.sampling import MAX_PENALTY, MAX_SEED, SamplingError, check_temperature

MAX_STOPS = 4  # OpenAI's limit


class FieldError(ValueError):
    """A check across the body that is still about one field: its 422 names `field`, not the body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


MAX_STOP_CHARS = 100


def valid_text(text: str) -> str:
    """`text`, if it can be written as UTF-8 (no unpaired surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"contains an unpaired surrogate ({text[e.start]!a} at character {e.start}): not valid Unicode"
        ) from None
    return text


Text = Annotated[str, AfterValidator(valid_text)]


def temperature_rule(t: float | None) -> float | None:
    """jai.inference.sampling's one rule for temperatures, as a 422 naming the field."""
    try:
        return None if t is None else check_temperature(t)
    except SamplingError as e:
        raise ValueError(str(e).removeprefix("temperature ")) from None


def check_stop(stop: str | list[str] | None) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOPS:
        raise ValueError(f"at most {MAX_STOPS} stop strings, got {len(stops)}")
    for s in stops:
        if not s or len(s) > MAX_STOP_CHARS:
            raise ValueError(f"each stop string must be 1 to {MAX_STOP_CHARS} characters, got {s!r:.120}")
    return stops


Penalty = Annotated[float | None, Field(ge=-MAX_PENALTY, le=MAX_PENALTY, allow_inf_nan=False)]
Temperature = Annotated[float | None, Field(ge=0.0, allow_inf_nan=False), AfterValidator(temperature_rule)]
Stop = Annotated[Text | list[Text] | None, AfterValidator(check_stop)]


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    include_usage: bool = False


class Sampling(BaseModel):
    """The sampling fields every generating route shares."""

    model_config = ConfigDict(strict=True, extra="forbid")

    temperature: Temperature = None  # None: JAI's default (jai.inference.sampling.SamplingConfig)
    top_p: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    stop: Stop = None
    stream: bool = False


class OpenAIFields(Sampling):
    """The OpenAI request fields, some accepted only at their neutral value."""

    model: Text | None = None  # None: the served model
    max_tokens: int | None = Field(None, ge=1)
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    user: Text | None = None
    presence_penalty: Penalty = None
    frequency_penalty: Penalty = None
    logprobs: Any = None
    logit_bias: dict[str, float] | None = None

    @model_validator(mode="after")
    def _unsupported(self) -> OpenAIFields:
        if self.logprobs not in (None, False, 0):
            raise FieldError(
                "logprobs", f"not supported by this server (only null, false or 0), got {self.logprobs!r:.40}"
            )
        if self.logit_bias:
            raise FieldError("logit_bias", "not supported by this server (only null or {})")
        return self


class CompletionRequest(OpenAIFields):
    prompt: Text | list[Text] = Field(description="the text to continue, as is (one prompt per request)")
    echo: bool = False
    best_of: int | None = Field(None, ge=1, le=1)
    suffix: None = None

    @model_validator(mode="after")
    def _one_prompt(self) -> CompletionRequest:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise FieldError("prompt", f"one prompt per request, got a list of {len(self.prompt)}")
            self.prompt = self.prompt[0]
        if not self.prompt:
            raise FieldError("prompt", "empty: give the text to continue")
        if self.echo:
            raise FieldError("echo", "not supported by this server (only false)")
        return self


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    type: Literal["text"]
    text: Text


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None
    name: Text | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ChatRequest(OpenAIFields):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer name of max_tokens

    @model_validator(mode="after")
    def _max(self) -> ChatRequest:
        if self.max_tokens is None:
            self.max_tokens = self.max_completion_tokens
        return self


class GenerateRequest(Sampling):
    """JAI's own route: a question about a posting, in the format the model was trained on."""

    question: Text = Field(min_length=1)
    posting: Text = ""
    max_new_tokens: int | None = Field(None, ge=1)
    repetition_penalty: float | None = Field(None, gt=0.0, allow_inf_nan=False)  # None: 1, none
    no_repeat_ngram_size: int | None = Field(None, ge=0)  # None: 0, none


PENALTY_FIELDS = ("frequency_penalty", "presence_penalty", "repetition_penalty", "no_repeat_ngram_size")


def penalties(body: Sampling) -> dict[str, Any]:
    """The penalties a request gives, as SamplingConfig fields (a field a route lacks, or null: none)."""
    return {k: v for k in PENALTY_FIELDS if (v := getattr(body, k, None)) is not None}


class SearchRequest(BaseModel):
    """JAI's search route: postings for a query, best first (no model involved)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    query: Text = Field(min_length=1)
    k: int = Field(5, ge=1, le=50)
