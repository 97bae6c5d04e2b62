"""The lines of a journal (``<cassette>.journal``), as they are checked when it is read back.

A journal is written by the proxy, but read after a crash from a disk anyone with access to the
folder may have touched: every field is checked for its type (strict: ``"200"`` is not a status), so
a tampered journal is refused in one line instead of failing later on the request path. Writing
stays plain ``orjson`` on dicts of the same shape (:mod:`cassette_proxy.store.journal`), which is
several times cheaper per recorded interaction; a round-trip test keeps the two equal.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from cassette_proxy.settings import MATCHERS, RecordMode

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)

Header = tuple[StrictStr, StrictStr]


class JournalBody(BaseModel):
    """A body: UTF-8 text as it is, anything else in base64 (exactly one of the two)."""

    model_config = _STRICT

    text: StrictStr | None = None
    base64: StrictStr | None = None

    @model_validator(mode="after")
    def _one_of(self) -> JournalBody:
        if (self.text is None) == (self.base64 is None):
            raise ValueError("a body holds exactly one of 'text' and 'base64'")
        if self.base64 is not None:
            try:
                base64.b64decode(self.base64, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"'base64' is not base64 ({exc})") from exc
        return self

    def decoded(self) -> bytes:
        if self.base64 is not None:
            return base64.b64decode(self.base64)
        assert self.text is not None
        return self.text.encode("utf-8")


class JournalRequest(BaseModel):
    model_config = _STRICT

    method: Annotated[str, Field(strict=True, min_length=1)]
    uri: Annotated[str, Field(strict=True, min_length=1)]
    headers: list[Header]
    body: JournalBody


class JournalResponse(BaseModel):
    model_config = _STRICT

    status: Annotated[int, Field(strict=True, ge=100, le=599)]
    reason: StrictStr
    headers: list[Header]
    body: JournalBody
    # When the response's parts arrived, as the streaming path records them beside it; a
    # nicety, read leniently (a malformed one replays without it), so not checked here.
    timing: object = None
    recorded_at: StrictStr | None = None  # when it was recorded (journals before: none)


class JournalRecord(BaseModel):
    """One recorded interaction."""

    model_config = _STRICT

    request: JournalRequest
    response: JournalResponse


class JournalHeaderLine(BaseModel):
    """The first line: the journal's format version and how its run recorded."""

    model_config = _STRICT

    journal: StrictInt
    record_mode: RecordMode
    match_on: Annotated[tuple[StrictStr, ...], Field(min_length=1)]

    @field_validator("match_on")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in MATCHERS]
        if unknown:
            raise ValueError(f"unknown matcher {', '.join(map(repr, unknown))}")
        return value
