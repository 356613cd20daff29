"""Prompt wording through an OpenAI-compatible chat API (GPT, or Qwen3 served by vLLM).

`PromptRewriter.rewrite(spec)` asks the model to reword a poster prompt and returns a
`RewriteResult`; it never raises for anything the API or the model does: failures are
recorded as a reason code with a one-line detail. The copy text is what the poster
must show, so a reply in which any copy line is not present verbatim is rejected
(`llm_copy_changed`), never repaired.

Reason codes (RewriteResult.error):
    llm_copy_changed        a copy line is not verbatim in the new prompt (byte for byte, and
                            not run into a combining mark, an invisible format character
                            or one more letter or digit of the same word)
    llm_bad_json            the reply is not a JSON object (after one more request)
    llm_schema              JSON, but not {"prompt": str, "negative_prompt": str} (control
                            characters other than tab and line breaks are refused)
    llm_empty               no content in the reply (refusal, content filter, no choices)
    llm_<failure>           the HTTP failures of every API backend (datapipe.backends.api_client)
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datapipe.backends.api_client import ApiClient
from datapipe.backends.api_common import (
    check_placeholders,
    first_error,
    import_api,
    localized,
    read_prompt_file,
    strip_fences,
)
from datapipe.records import PromptSpec

TEMPLATE_FILE = "llm_rewrite.yaml"
USER_PLACEHOLDERS = {
    "prompt",
    "negative_prompt",
    "entity",
    "entity_description",
    "style",
    "aspect_ratio",
    "width",
    "height",
    "copy_lines",
}
USER_REQUIRED = {"prompt", "copy_lines"}
RESPONSE_FORMAT = {"type": "json_object"}
CONTENT_TRIES = 2
"""A reply that is not JSON is asked for once more, then recorded as llm_bad_json."""


@dataclass
class RewriteResult:
    prompt: str | None
    negative_prompt: str | None
    error: str | None
    """None on success, else a reason code (see the module docstring)."""
    detail: str = ""
    cached: bool = False
    """True when the reply came from the cache (no HTTP request was made)."""
    attempts: int = 0
    """HTTP requests made for this result (retries included); 0 for a cache hit."""
    usage: dict[str, int] = field(default_factory=dict)
    """prompt_tokens, completion_tokens, total_tokens summed over the paid replies."""

    @property
    def ok(self) -> bool:
        return self.error is None


class RewriteReply(BaseModel):
    """What the model must answer."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    prompt: str = Field(min_length=1, max_length=8000, strict=True)
    negative_prompt: str = Field(max_length=4000, strict=True)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _no_control(cls, value: str) -> str:
        for i, char in enumerate(value):
            if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
                raise ValueError(f"control character U+{ord(char):04X} at position {i}")
        return value


def _word_char(char: str) -> bool:
    """A letter or digit of a script that separates words with spaces (not CJK)."""
    return char.isalnum() and unicodedata.east_asian_width(char) not in ("W", "F")


def _extends(edge: str, neighbour: str) -> bool:
    """Whether `neighbour`, written next to a copy line's `edge` character, changes what
    the line shows: a combining mark, an invisible format character (zero-width space,
    joiner, bidi mark), or one more letter or digit of the same word ("$19" in "$199")."""
    if unicodedata.category(neighbour) in ("Mn", "Mc", "Me", "Cf"):
        return True
    return _word_char(edge) and _word_char(neighbour)


def copy_change(text: str, prompt: str) -> str | None:
    """None when copy line `text` appears in `prompt` byte for byte, and no occurrence of
    it runs into a character that would change it; else what is wrong."""
    if not text:
        return None
    start = prompt.find(text)
    if start < 0:
        return "is not verbatim in the new prompt"
    while start >= 0:
        end = start + len(text)
        before = prompt[start - 1] if start else ""
        after = prompt[end] if end < len(prompt) else ""
        for edge, neighbour in ((text[0], before), (text[-1], after)):
            if neighbour and _extends(edge, neighbour):
                return f"is not verbatim in the new prompt: it runs into {neighbour!a}"
        start = prompt.find(text, start + 1)
    return None


@dataclass(frozen=True)
class RewriteTemplates:
    system: dict[str, str]
    user: dict[str, str]

    @classmethod
    def load(cls, folder: Path) -> RewriteTemplates:
        path = folder / TEMPLATE_FILE
        data = read_prompt_file(path)
        system = localized(path, data, "system")
        user = localized(path, data, "user")
        for lang, text in user.items():
            check_placeholders(path, f"user.{lang}", text, USER_PLACEHOLDERS, USER_REQUIRED)
        return cls(system=system, user=user)


def copy_lines_block(spec: PromptSpec) -> str:
    return "\n".join(f"- {json.dumps(line.text, ensure_ascii=False)}" for line in spec.copy)


class PromptRewriter(ApiClient[RewriteResult]):
    """Rewords PromptSpec prompts through an OpenAI-compatible chat-completions API."""

    label = "openai"
    reason_prefix = "llm"
    what = "the openai prompt backend"
    template_type = RewriteTemplates

    def _import_sdk(self) -> Any:
        return import_api("openai", self.what)

    def _connect(self, sdk: Any, key: str) -> Any:
        return sdk.OpenAI(
            api_key=key,
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,  # retries happen in RetryPolicy only, where they are counted
        )

    def _failed(self, error: str, detail: str) -> RewriteResult:
        return RewriteResult(None, None, error, detail)

    def _templates(self) -> RewriteTemplates:
        if self.templates is None:
            self.templates = RewriteTemplates.load(self.prompts_dir)
        return self.templates

    def messages(self, spec: PromptSpec) -> list[dict[str, str]]:
        templates = self._templates()
        lang = spec.language if spec.language in ("zh", "en") else "en"
        user = templates.user[lang].format(
            prompt=spec.prompt,
            negative_prompt=spec.negative_prompt,
            entity=spec.entity_name,
            entity_description=spec.entity_description,
            style=spec.style_name,
            aspect_ratio=spec.aspect_ratio,
            width=spec.width,
            height=spec.height,
            copy_lines=copy_lines_block(spec),
        )
        return [
            {"role": "system", "content": templates.system[lang]},
            {"role": "user", "content": user},
        ]

    def request(self, spec: PromptSpec) -> dict[str, Any]:
        """The canonical request: what is sent, and what the cache key hashes."""
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": self.messages(spec),
            "temperature": self.config.temperature,
            "response_format": RESPONSE_FORMAT,
        }
        if self.config.enable_thinking is not None:
            # vLLM passes chat_template_kwargs to Qwen3's chat template; thinking off spares
            # the reasoning tokens (and the timeouts they cause) on a one-line rewording.
            request["extra_body"] = {
                "chat_template_kwargs": {"enable_thinking": self.config.enable_thinking}
            }
        return request

    def rewrite(self, spec: PromptSpec) -> RewriteResult:
        self.load()
        request = self.request(spec)
        return self._call(
            request,
            lambda: self._send(request),
            lambda reply: self._evaluate(spec, reply),
            spec.spec_id,
        )

    def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        """One HTTP attempt, its reply reduced to content, finish reason and usage."""
        response = self._attempt(lambda: self._client.chat.completions.create(**request))
        choices = getattr(response, "choices", None)
        if not choices:
            return {"content": None, "finish_reason": "no_choices", "usage": _usage(response)}
        choice = choices[0]
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        if isinstance(content, str):
            content = self._redact.scrub(content)  # kept in the cache and the samples
        return {
            "content": content,
            "finish_reason": getattr(choice, "finish_reason", None),
            "usage": _usage(response),
        }

    def _evaluate(self, spec: PromptSpec, reply: dict[str, Any]) -> RewriteResult:
        usage = dict(reply.get("usage") or {})
        content = reply.get("content")
        if not isinstance(content, str) or not content.strip():
            reason = reply.get("finish_reason") or "none"
            return RewriteResult(
                None, None, "llm_empty", f"no content (finish: {reason})", usage=usage
            )
        try:
            data = json.loads(strip_fences(content))
        except ValueError as exc:
            snippet = self._redact(content, limit=120)
            return RewriteResult(
                None, None, "llm_bad_json", f"{exc}; reply: {snippet}", usage=usage
            )
        try:
            parsed = RewriteReply.model_validate(data)
        except ValidationError as exc:
            return RewriteResult(None, None, "llm_schema", first_error(exc), usage=usage)
        changed = [
            (line, problem)
            for line in spec.copy
            if (problem := copy_change(line.text, parsed.prompt)) is not None
        ]
        if changed:
            line, problem = changed[0]
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            detail = (
                f"copy line {line.role} {json.dumps(line.text, ensure_ascii=False)} {problem}{more}"
            )
            return RewriteResult(None, None, "llm_copy_changed", detail, usage=usage)
        negative = parsed.negative_prompt or spec.negative_prompt
        return RewriteResult(parsed.prompt, negative, None, "", usage=usage)


def _usage(response: Any) -> dict[str, int]:
    usage = getattr(response, "usage", None)
    out = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = getattr(usage, name, None)
        if isinstance(value, int):
            out[name] = value
    return out
