"""Request bodies of the local test controls (`/_upstack`, CONTRACT §10). Unknown members are refused: a typo in a
test's control must fail loudly, not leave the control off."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

TEXT = 1_000
NAME = 255
MAX_RULES = 100


class Scoped(BaseModel):
    """A control for one tenant (org, and optionally one sandbox of it), or for all when `org` is absent."""

    model_config = ConfigDict(extra="forbid", strict=True)

    org: str | None = Field(None, min_length=1, max_length=NAME, description="Only this org's requests and jobs.")
    sandbox: str | None = Field(None, min_length=1, max_length=NAME, description="Only this sandbox (with org).")

    def covers(self, org: str | None, sandbox: str | None) -> bool:
        return (self.org is None or self.org == org) and (self.sandbox is None or self.sandbox == sandbox)

    @property
    def specificity(self) -> int:
        return (self.org is not None) + (self.sandbox is not None)


class PacingRule(Scoped):
    """How new jobs run: at once, after a delay, or held until released (at NEW, or once PROCESSING)."""

    mode: Literal["immediate", "delay", "manual"] = "immediate"
    delaySeconds: float = Field(0, ge=0, le=3_600)
    holdAt: Literal["NEW", "PROCESSING"] = Field("NEW", description="With manual: where a job waits for release.")


class FailureRule(Scoped):
    """Fail the next `times` jobs of a kind with this code and message."""

    id: str | None = Field(None, max_length=64, description="Given by the server.")
    kind: Literal["ingest", "export"]
    times: int = Field(1, ge=0, le=1_000_000, validation_alias=AliasChoices("times", "count"))
    code: str = Field("FORCED-FAILURE", min_length=1, max_length=200)
    message: str = Field("Failure forced by /_upstack/controls", max_length=TEXT)


class FaultRule(Scoped):
    """Answer matching requests with `status` (and/or add latency), for the next `times` of them or until cleared."""

    id: str | None = Field(None, max_length=64, description="Given by the server.")
    method: str = Field("*", min_length=1, max_length=16)
    path: str = Field(min_length=1, max_length=TEXT, description="A glob, e.g. /data/core/ups/export/jobs*")
    status: int | None = Field(None, ge=400, le=599)
    message: str = Field("Fault injected by /_upstack/controls", max_length=TEXT)
    latencyMs: int = Field(0, ge=0, le=120_000)
    times: int | None = Field(None, ge=1, le=1_000_000, description="Matching requests it answers; absent: all.")


class ControlsUpdate(BaseModel):
    """`PUT /_upstack/controls`: each member given replaces that control (a `jobPacing` with an org sets only
    that tenant's pacing); omitted members stay as they are."""

    model_config = ConfigDict(extra="forbid", strict=True)

    jobPacing: PacingRule | None = None
    failNextJobs: list[FailureRule] | None = Field(None, max_length=MAX_RULES)
    faults: list[FaultRule] | None = Field(None, max_length=MAX_RULES)


class ReleaseRequest(Scoped):
    """`POST /_upstack/jobs/release`: held jobs of a kind, of one subject, of one tenant, or all."""

    kind: Literal["ingest", "export", "store"] | None = None
    subjectId: str | int | None = None


class DrainRequest(Scoped):
    """`POST /_upstack/jobs/drain`: wait until no job (of the tenant) is queued or running, held ones aside."""

    timeoutSeconds: float = Field(30, gt=0, le=600)


class ResetRequest(Scoped):
    """`POST /_upstack/reset`: one tenant (org, sandbox optional), or everything without a body."""


# As the gateway reads x-gw-ims-org-id and x-sandbox-name: no control characters, no surrounding blanks.
HEADER_VALUE = r"^[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s])?$"


class SandboxRequest(BaseModel):
    """`POST /_upstack/sandboxes`: create a sandbox of an org before its first request (which, with
    UPSTACK_STRICT_MEMBERS, is refused for a sandbox that does not exist, as the platform refuses it)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    org: str = Field(max_length=NAME, pattern=HEADER_VALUE, examples=["MYORG@AdobeOrg"])
    sandbox: str = Field(max_length=NAME, pattern=HEADER_VALUE, examples=["dev"])
