"""What every answer model shares: the document describes what a view answers, and a member the model does not
declare (an answer carries a client's own members back, e.g. a dataset's) is kept, not refused, when a test
validates a real answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")
