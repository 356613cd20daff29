"""The benchmark judge: a Gemini vision model through google-genai.

`GeminiJudge.judge(task, language, instruction, images)` sends the task definition, the
instruction and the images (inline PNG parts, each introduced by its name) and asks for
a JSON verdict under a response schema; the reply is validated again with pydantic.
It never raises for anything the API or the model does: failures are recorded as a
reason code with a one-line detail, and `suitable` is then None (not judged).

Retries: google-genai retries nothing unless `HttpOptions.retry_options` is set. We
leave it unset and wrap each call in the same tenacity RetryPolicy as the OpenAI
backend, so both backends share one retry rule, one attempt count (JudgeVerdict.attempts
is every HTTP request made) and one injectable sleep, and every retry takes a
rate-limiter token (SDK-internal retries would bypass the limiter and the count).

Reason codes (JudgeVerdict.error):
    judge_schema              JSON, but a field is missing or a score is not an int 1-5
    judge_bad_json            the reply is not JSON (after one more request)
    judge_empty               no text in the reply (blocked prompt, safety stop, no candidates)
    judge_<failure>           the HTTP failures of every API backend (datapipe.backends.api_client)
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from datapipe.backends.api_client import ApiClient
from datapipe.backends.api_common import (
    check_placeholders,
    first_error,
    import_api,
    localized,
    read_prompt_file,
    strip_fences,
)
from datapipe.backends.base import JudgeVerdict
from datapipe.errors import LibraryError
from datapipe.recipe import ALL_TASKS

TEMPLATE_FILE = "judge.yaml"
USER_PLACEHOLDERS = {"task", "task_definition", "instruction", "image_names"}
IMAGE_ROLES = ("source", "mask", "target")
SCORE_KEYS = ("instruction_following", "visual_quality", "text_accuracy", "task_fit")
CONTENT_TRIES = 2
_IMAGE_NAME = re.compile(r"^(?P<role>[a-z]+)(?:_(?P<index>\d+))?$")

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "scores": {
            "type": "OBJECT",
            "properties": {k: {"type": "INTEGER", "minimum": 1, "maximum": 5} for k in SCORE_KEYS},
            "required": list(SCORE_KEYS),
            "property_ordering": list(SCORE_KEYS),
        },
        "reasons": {"type": "ARRAY", "items": {"type": "STRING"}},
        "suitable": {"type": "BOOLEAN"},
    },
    "required": ["scores", "reasons", "suitable"],
    # Scores and reasons before the decision: the model commits to its findings first.
    "property_ordering": ["scores", "reasons", "suitable"],
}


Score = Annotated[int, Field(ge=1, le=5, strict=True)]


class JudgeScores(BaseModel):
    model_config = ConfigDict(extra="ignore")

    instruction_following: Score
    visual_quality: Score
    text_accuracy: Score
    task_fit: Score


class JudgeReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    suitable: StrictBool
    reasons: list[StrictStr] = Field(max_length=50)
    scores: JudgeScores


@dataclass(frozen=True)
class JudgeTemplates:
    system: dict[str, str]
    tasks: dict[str, dict[str, str]]
    images: dict[str, dict[str, str]]
    user: dict[str, str]
    rubric: dict[str, str]

    @classmethod
    def load(cls, folder: Path) -> JudgeTemplates:
        path = folder / TEMPLATE_FILE
        data = read_prompt_file(path)
        tasks_data = data.get("tasks")
        images_data = data.get("images")
        if not isinstance(tasks_data, dict) or not isinstance(images_data, dict):
            raise LibraryError(f"{path}: needs the mappings tasks: and images:")
        missing = [t for t in ALL_TASKS if t not in tasks_data]
        if missing:
            raise LibraryError(f"{path}: tasks: no definition for {missing[0]!r}")
        missing = [r for r in IMAGE_ROLES if r not in images_data]
        if missing:
            raise LibraryError(f"{path}: images: no entry for {missing[0]!r}")
        user = localized(path, data, "user")
        for lang, text in user.items():
            check_placeholders(path, f"user.{lang}", text, USER_PLACEHOLDERS, {"instruction"})
        return cls(
            system=localized(path, data, "system"),
            tasks={t: localized(path, tasks_data, t) for t in ALL_TASKS},
            images={r: localized(path, images_data, r) for r in images_data},
            user=user,
            rubric=localized(path, data, "rubric"),
        )


def image_order(name: str) -> tuple[int, int, str]:
    """source, source_0, source_1 ..., mask, target; unknown names last, by name."""
    match = _IMAGE_NAME.match(name)
    role = match["role"] if match else name
    index = int(match["index"]) if match and match["index"] else -1
    rank = IMAGE_ROLES.index(role) if role in IMAGE_ROLES else len(IMAGE_ROLES)
    return rank, index, name


def sniff_mime(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def fit_image(name: str, data: bytes, max_side: int) -> bytes:
    """The image with its long side at most `max_side`, as PNG; unchanged when it fits.
    A full-size poster is megabytes inline, toward Gemini's request limit, and the model
    sees it downscaled anyway. Masks are resized nearest-neighbour to stay binary."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if max(image.size) <= max_side:
            return data
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        mask = name.split("_")[0] == "mask"
        resample = Image.Resampling.NEAREST if mask else Image.Resampling.LANCZOS
        small = image.convert("L" if mask else "RGB").resize(size, resample)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()


class GeminiJudge(ApiClient[JudgeVerdict]):
    """Judges benchmark samples with a Gemini model through google-genai."""

    label = "gemini"
    reason_prefix = "judge"
    what = "the gemini judge backend"
    template_type = JudgeTemplates

    def _import_sdk(self) -> Any:
        return import_api("google.genai", self.what), import_api("google.genai.types", self.what)

    def _connect(self, sdk: Any, key: str) -> Any:
        genai, self._types = sdk
        return genai.Client(
            api_key=key,
            vertexai=False,
            http_options=self._types.HttpOptions(
                base_url=self.config.base_url,
                timeout=int(self.config.timeout_s * 1000),  # milliseconds
                # retry_options stays unset: the SDK does not retry, RetryPolicy does.
            ),
        )

    def _failed(self, error: str, detail: str) -> JudgeVerdict:
        return JudgeVerdict(None, error=error, detail=detail)

    def request(
        self, task: str, language: str, instruction: str, images: dict[str, bytes]
    ) -> dict[str, Any]:
        """The canonical request: what is sent (images by hash) and what the cache key
        hashes. Images are ordered source(s), mask, target whatever the dict order."""
        if task not in ALL_TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {', '.join(ALL_TASKS)}")
        if language not in ("zh", "en"):
            raise ValueError(f"unknown language {language!r}; expected zh or en")
        if not images:
            raise ValueError("the judge needs at least one image")
        templates = self._templates()
        names = sorted(images, key=image_order)
        user = templates.user[language].format(
            task=task,
            task_definition=templates.tasks[task][language],
            instruction=instruction,
            image_names=", ".join(names),
        )
        contents: list[dict[str, Any]] = [{"text": user}]
        for name in names:
            data = images[name]
            match = _IMAGE_NAME.match(name)
            role = match["role"] if match else name
            label = templates.images[role][language] if role in templates.images else name
            contents.append({"text": f"{label} [{name}]:"})
            contents.append(
                {
                    "image": name,
                    "mime_type": sniff_mime(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                }
            )
        contents.append({"text": templates.rubric[language]})
        return {
            "model": self.config.model,
            "system": templates.system[language],
            "contents": contents,
            "temperature": self.config.temperature,
            "response_mime_type": "application/json",
            "response_schema": RESPONSE_SCHEMA,
        }

    def judge(
        self, task: str, language: str, instruction: str, images: dict[str, bytes]
    ) -> JudgeVerdict:
        self.load()
        side = self.config.max_image_side
        images = {name: fit_image(name, data, side) for name, data in images.items()}
        request = self.request(task, language, instruction, images)
        contents, config = self._wire(request, images)
        return self._call(
            request, lambda: self._send(contents, config), self._evaluate, f"{task} judge call"
        )

    def _wire(self, request: dict[str, Any], images: dict[str, bytes]) -> tuple[Any, Any]:
        """The SDK objects for a canonical request."""
        types = self._types
        parts = []
        for item in request["contents"]:
            if "text" in item:
                parts.append(types.Part.from_text(text=item["text"]))
            else:
                parts.append(
                    types.Part.from_bytes(data=images[item["image"]], mime_type=item["mime_type"])
                )
        contents = [types.Content(role="user", parts=parts)]
        config = types.GenerateContentConfig(
            system_instruction=request["system"],
            temperature=request["temperature"],
            response_mime_type=request["response_mime_type"],
            response_schema=request["response_schema"],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        return contents, config

    def _send(self, contents: Any, config: Any) -> dict[str, Any]:
        """One HTTP attempt, its reply reduced to content, finish reason and usage."""
        response = self._attempt(
            lambda: self._client.models.generate_content(
                model=self.config.model, contents=contents, config=config
            )
        )
        usage = _usage(response)
        candidates = getattr(response, "candidates", None) or []
        if not candidates:
            feedback = getattr(response, "prompt_feedback", None)
            block = getattr(feedback, "block_reason", None)
            finish = f"blocked:{_enum(block)}" if block is not None else "no_candidates"
            return {"content": None, "finish_reason": finish, "usage": usage}
        candidate = candidates[0]
        content = getattr(candidate, "content", None)
        parts = getattr(content, "parts", None) or []
        text = "".join(p.text for p in parts if getattr(p, "text", None) and not p.thought)
        text = self._redact.scrub(text)  # a reply that repeats the key must not carry it on
        return {
            "content": text or None,
            "finish_reason": _enum(getattr(candidate, "finish_reason", None)),
            "usage": usage,
        }

    def _evaluate(self, reply: dict[str, Any]) -> JudgeVerdict:
        usage = dict(reply.get("usage") or {})
        content = reply.get("content")
        if not isinstance(content, str) or not content.strip():
            reason = reply.get("finish_reason") or "none"
            return JudgeVerdict(
                None, error="judge_empty", detail=f"no text (finish: {reason})", usage=usage
            )
        try:
            data = json.loads(strip_fences(content))
        except ValueError as exc:
            snippet = self._redact(content, limit=120)
            return JudgeVerdict(
                None, error="judge_bad_json", detail=f"{exc}; reply: {snippet}", usage=usage
            )
        try:
            parsed = JudgeReply.model_validate(data)
        except ValidationError as exc:
            return JudgeVerdict(None, error="judge_schema", detail=first_error(exc), usage=usage)
        return JudgeVerdict(
            suitable=parsed.suitable,
            reasons=[r.strip() for r in parsed.reasons if r.strip()],
            scores=parsed.scores.model_dump(),
            usage=usage,
        )


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value)) if value is not None else "none"


def _usage(response: Any) -> dict[str, int]:
    meta = getattr(response, "usage_metadata", None)
    out = {}
    for ours, theirs in (
        ("prompt_tokens", "prompt_token_count"),
        ("completion_tokens", "candidates_token_count"),
        ("total_tokens", "total_token_count"),
    ):
        value = getattr(meta, theirs, None)
        if isinstance(value, int):
            out[ours] = value
    return out
