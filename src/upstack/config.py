"""One Settings object for the whole process, read from UPSTACK_* environment variables and CLI flags."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from upstack.jobs import lanes


class Settings(BaseSettings):
    """Every knob of upstack. CLI flags override the environment; the environment overrides defaults."""

    model_config = SettingsConfigDict(env_prefix="UPSTACK_", extra="ignore")

    data_dir: Path = Field(Path("./.upstack"), description="Root of the embedded database file and the data lake.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Default: a SQLite file in DATA_DIR. Production: postgresql+psycopg://...",
    )
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8080, description="Port the API listens on.")
    auth: Literal["permissive", "strict"] = Field(
        "permissive",
        description="permissive: any non-empty bearer token and api key pass. strict: only tokens issued by "
        "POST /ims/token/v3 to a registered client, unexpired, whose client id equals x-api-key.",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token that /_upstack/* (but health) requires in strict auth mode "
        "(Authorization: Bearer <token>); without it, strict mode refuses every local control.",
    )
    allowed_hosts: str = Field(
        "",
        description="Extra Host header names the server answers, comma-separated (e.g. 'api,upstack.internal', "
        "'*.corp.example'); '*' answers any. IP addresses, localhost, *.localhost and Adobe's API hosts are always allowed. Any "
        "other name is refused, so a web page cannot reach the server through DNS rebinding.",
    )
    ims_clients: str = Field(
        "",
        description="Registered IMS clients for strict mode: 'client_id:client_secret:org1|org2;...' "
        "('*' as org allows any org).",
    )
    workers: int = Field(1, ge=0, description="Worker threads embedded in `upstack serve`: this many for the user "
                         "lane (ingest, export) and one for the background lane (profile maintenance); 0 = API only.")
    worker_lanes: str = Field("user,background", description="Job lanes the worker threads of `upstack serve` "
                              "and `upstack worker` serve: user, background or both (comma-separated). A "
                              "deployment may dedicate processes to one lane; background jobs give way to user "
                              "work wherever it runs.")
    worker_lease_seconds: float = Field(30.0, gt=0, description="A claimed job is re-claimable this long after its last heartbeat.")
    worker_poll_seconds: float = Field(0.2, gt=0, description="How often an idle worker looks for work.")
    sweep_interval_seconds: float = Field(60.0, gt=0, description="How often leftovers of crashed jobs and "
                                          "uploads (staging, scratch and temp files) are swept; also at start.")
    job_max_attempts: int = Field(3, ge=1, description="Runs of a job before it is failed for good.")
    journal_max_requests: int = Field(10_000, ge=0, description="Requests the request journal (GET "
                                      "/_upstack/requests) keeps in memory, newest last; 0 turns it off.")
    journal_max_body_bytes: int = Field(64 * 1024, ge=0, description="Bytes of each request body the journal "
                                        "keeps (uploads are only counted).")
    journal_max_bytes: int = Field(64 * 1024**2, gt=0, description="Memory the journal may use in all; the oldest "
                                   "entries go first.")
    strict_members: bool = Field(False, description="What the platform would refuse or answer differently is a "
                                 "400 naming it instead of passing with an `x-upstack-warning` header: unknown "
                                 "members of every typed JSON body of the AEP families (a typo like `mergPolicy`), "
                                 "`fields` paths no dataset of the sandbox has (export jobs, Profile Access), and "
                                 "a first request to a sandbox other than `prod` that does not exist (create it "
                                 "with POST /_upstack/sandboxes).")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(False, description="Emit logs as JSON lines instead of console text.")
    max_upload_bytes: int = Field(1024**3, gt=0, description="Largest file accepted by one upload PUT.")
    max_body_bytes: int = Field(10 * 1024**2, gt=0, description="Largest JSON request body.")
    request_idle_timeout_seconds: float = Field(60.0, gt=0, description="A request body (upload or JSON) that "
                                                "sends nothing for this long is answered 408 and dropped.")
    max_json_depth: int = Field(64, ge=2, le=1000, description="Deepest nesting of objects and arrays in a JSON "
                                "request body; deeper bodies are refused (400) before they are parsed.")
    max_record_depth: int = Field(32, ge=2, le=64, description="Deepest nesting of objects and arrays in one "
                                  "ingested record (the record itself is level 1); deeper records are row errors.")
    max_record_fields: int = Field(10_000, ge=1, description="Most leaf fields (distinct paths to a value, array "
                                   "items counted once) in one ingested record; wider records are row errors.")
    export_rows_per_file: int = Field(1_000_000, gt=0, description="Export Parquet files are split above this row count.")
    engine_memory_limit: str | None = Field(None, description="DuckDB memory_limit for merges (e.g. '2GB'); spills to DATA_DIR/tmp above it.")
    export_by_component: bool = Field(
        True, description="Split exports too big to stitch in memory by the profile store's components "
        "(each group merged alone, less memory) rather than by a whole-lake stitch.")
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Merge engine of exports: duckdb (this machine) or spark "
        "(the same merge plan on Apache Spark; needs the `spark` extra and Java 17).")
    spark_master: str = Field("local[2]", description="Spark master URL when ENGINE is spark (local[N], "
                              "spark://host:7077, yarn, k8s://...).")

    @field_validator("worker_lanes")
    @classmethod
    def _known_lanes(cls, value: str) -> str:
        return ",".join(lanes.parse(value))

    @property
    def lanes(self) -> tuple[str, ...]:
        return lanes.parse(self.worker_lanes)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'upstack.db').resolve()}"

    @property
    def lake_root(self) -> Path:
        return self.data_dir.resolve()

    def ims_client_table(self) -> dict[str, tuple[str, frozenset[str]]]:
        table: dict[str, tuple[str, frozenset[str]]] = {}
        for entry in filter(None, (e.strip() for e in self.ims_clients.split(";"))):
            client_id, _, rest = entry.partition(":")
            secret, _, orgs = rest.partition(":")
            table[client_id] = (secret, frozenset(o for o in orgs.split("|") if o) or frozenset({"*"}))
        return table


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
