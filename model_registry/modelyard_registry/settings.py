"""The one settings object for every Modelyard process.

Read once from the environment (prefix ``MODELYARD_``; a few well-known names such as
``DATABASE_URL`` and ``REDIS_URL`` are read as they are, because that is what operators and
container platforms already set).  Everything has an embedded default so a fresh machine works.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _physical_cores() -> int:
    """Physical cores on the machine (llama.cpp slows down on hyper-threads)."""
    try:
        pairs = set()
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            phys = core = None
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                elif not line.strip() and core is not None:
                    pairs.add((phys, core))
                    phys = core = None
        if pairs:
            return len(pairs)
    except OSError:
        pass
    return max(1, (os.cpu_count() or 2) // 2)


def cgroup_cpus(cpu_max: str) -> int | None:
    """Whole CPUs a cgroup v2 ``cpu.max`` line allows (``"200000 100000"`` -> 2), None if unlimited.

    A container limited to 2 CPUs on a 64-core host must not start 32 llama.cpp threads: they
    would be throttled and run slower than 2.
    """
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, -(-quota // period))


def default_threads() -> int:
    """Physical cores, capped by the CPUs this process may use (affinity, cgroup quota)."""
    limits = [_physical_cores(), len(os.sched_getaffinity(0))]
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as f:
            quota = cgroup_cpus(f.read())
        if quota is not None:
            limits.append(quota)
    except OSError:
        pass
    return max(1, min(limits))


class Settings(BaseSettings):
    """Configuration for the registry, runtimes, router and platform."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="ignore")

    home: Path = Field(default=Path("~/.modelyard"), description="Catalogue and model cache.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELYARD_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL; SQLite under `home` when unset.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MODELYARD_REDIS_URL", "REDIS_URL"),
        description="Broker and results; an embedded redis-server when unset.",
    )

    # llama.cpp runtime
    ram_budget_mb: int = Field(default=4096, description="RAM the model pool may hold.")
    n_threads: int = Field(default_factory=default_threads)
    n_gpu_layers: int = Field(default=-1, description="-1 offloads all layers when supported.")
    n_ctx: int = Field(default=4096, description="Context window per loaded model (capped).")
    local_cpu_slots: int | None = Field(
        default=None, ge=0,
        description="Local generations that may compute at once on this machine's CPU, across "
        "all processes (runtimes/cpu_slots.py); unset: cores // n_threads, at least 1; 0: no "
        "limit. llama.cpp's spinning threads slow down many-fold when oversubscribed.",
    )
    local_cpu_wait_s: float = Field(
        default=60.0, ge=0,
        description="Longest a generation waits for a CPU slot before it runs anyway.",
    )
    runner_memory_headroom_mb: int = Field(
        default=4096, ge=0,
        description="Address space a llama.cpp runner may use beyond its model's RAM estimate "
        "(RLIMIT_AS); 0 = unlimited. 1536 aborted (std::bad_alloc) large-vocabulary models "
        "sampling under a JSON-schema grammar: Gemma-3 (262k tokens), Qwen2.5 (152k).",
    )

    # remote runtime
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    max_retries: int = Field(default=2, description="Retries on 5xx / connection errors only.")
    health_timeout_s: float = 3.0
    health_check_interval_s: float = Field(
        default=60, ge=0,
        description="Workers probe remote models this often (0: only `yard models check`).",
    )

    secret_env_allow: str = Field(
        default="MODELYARD_SECRET_*,VLLM_API_KEY",
        description="Comma-separated name patterns of variables an endpoint's `api_key_env` "
        "may name; any other is a 422 and is never sent.",
    )
    gguf_dirs: str = Field(
        default="", description="Comma-separated directories `POST /v1/models` may read a "
        "`gguf_path` from; empty: the model cache under `home` and the bundled models.",
    )
    egress_allow: str = Field(
        default="", description="Comma-separated hosts, addresses or CIDRs endpoints may "
        "resolve to (empty: any); link-local and metadata addresses are always refused.",
    )

    # routing
    machine_cost_per_hour: float = Field(
        default=0.10, description="USD per hour of this machine; prices local models."
    )
    unmeasured_tokens_per_s: float = Field(
        default=10.0,
        gt=0,
        description="Generation speed assumed for a local model with no measured Score yet "
        "(deliberately slow, so an unmeasured model is not priced as cheap).",
    )
    prefill_factor: float = Field(
        default=8.0,
        gt=0,
        description="Prompt processing speed as a multiple of generation speed, used only when "
        "a model's Scores do not let us derive its measured prefill rate.",
    )
    route_retrain_min_new: int = Field(
        default=200, ge=0,
        description="Workers retrain the routing predictor once this many new outcomes arrived "
        "since the active version (0: only `yard route train`).",
    )
    route_max_cost_ratio: float | None = Field(
        default=None, gt=0, le=1,
        description="Default cost budget for requests that set none: spend at most this fraction "
        "of always-the-best-model's cost (a trained predictor's curve serves it; unset: "
        "min_quality decides).",
    )
    route_predictor_check_s: float = Field(
        default=30.0, ge=0,
        description="How often a process looks for a newer trained predictor (not per request).",
    )

    # agents
    doc_max_chars: int = Field(default=200_000, description="Largest doc-summary input.")
    summary_chunk_tokens: int = Field(default=1024, description="Tokens per summarised chunk.")
    summary_overlap_tokens: int = Field(default=96, description="Tokens repeated across chunks.")

    # platform (API, jobs)
    api_workers: int = Field(
        default=1, ge=1, description="API processes (uvicorn workers) `yard api`/`yard up` start.",
    )
    cache_check_s: float = Field(
        default=1.0, gt=0,
        description="How often an API process checks for catalogue/key changes made without "
        "telling it (a Redis broadcast tells it at once).",
    )
    max_body_bytes: int = Field(default=2_000_000, gt=0, description="Largest request body.")
    max_json_depth: int = Field(
        default=64, ge=2, description="Deepest JSON nesting a request body may have (422)."
    )
    max_messages: int = Field(default=256, ge=1, description="Messages per chat request.")
    max_message_chars: int = Field(
        default=400_000, ge=1, description="Characters of all a chat request's messages together."
    )
    max_stop: int = Field(default=16, ge=0, description="Stop strings per request.")
    max_stop_chars: int = Field(default=256, ge=1, description="Characters per stop string.")
    max_tools: int = Field(default=64, ge=0, description="Tools per chat request.")
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per API key per minute (0: no limit)."
    )
    job_soft_time_limit_s: float = Field(default=900, gt=0, description="Job fails after this.")
    job_time_limit_s: float = Field(default=960, gt=0, description="Worker child killed after.")
    job_max_attempts: int = Field(
        default=3, ge=1, description="Deliveries of one job (worker deaths included) before fail."
    )
    job_max_retries: int = Field(default=3, ge=0, description="Retries on transient errors.")
    job_lease_s: float = Field(
        default=30, gt=0, description="A running job whose worker stops renewing its lease for "
        "this long is handed to another worker."
    )
    reconcile_interval_s: float = Field(default=10, gt=0, description="Reconciler period.")
    requeue_after_s: float = Field(
        default=60, gt=0, description="A job queued this long with no worker is re-enqueued."
    )
    broker_visibility_timeout_s: int = Field(
        default=3600, gt=0, description="Redis broker: unacked messages return after this."
    )
    worker_concurrency: int = Field(
        default=2, ge=1, description="Worker processes per `yard worker`."
    )
    worker_prefetch: int = Field(
        default=1, ge=1, description="Job messages each worker process holds beyond the one it "
        "runs (Celery's prefetch multiplier). 1 suits long jobs: a held message is a turn "
        "another idle worker cannot take. Short jobs (echo-like, ~10 ms) go faster with 4: the "
        "next message is already there when a job ends."
    )
    worker_turn_s: float = Field(
        default=1.0, ge=0, description="A worker process runs queued jobs back to back on one "
        "broker message while any wait, starting none after this many seconds (then it asks for "
        "another turn); 0: one job per message."
    )
    max_streams_per_key: int = Field(
        default=8, ge=0, description="Job event streams one key may hold open across every API "
        "process (counted in Redis; per process while Redis is down); one more is a 429 "
        "(0: no limit)."
    )
    stream_lease_s: float = Field(
        default=30.0, gt=0, description="How long an open event stream's slot stays counted "
        "without renewal (open streams renew it): a killed API process frees its slots after this."
    )
    budget_reservation_ttl_s: float = Field(
        default=3600.0, gt=0, description="How long a model call's budget reservation counts "
        "without renewal (a live stream renews it every third of this): a process killed "
        "mid-call stops holding its team's budget after this."
    )
    team_max_jobs: int = Field(
        default=200, ge=0, description="Jobs one team may have queued + running; more is a "
        "429 at submission (0: no limit)."
    )

    session_secret: str | None = Field(
        default=None, description="Signs web session cookies; when unset, a random secret is "
        "generated once and kept in `home` (mode 0600); a short or placeholder value refuses "
        "to start."
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token accepted on /metrics only, so Prometheus "
        "scrapes without a team or admin key; unset, /metrics needs an admin key."
    )

    # web accounts: sign-in, sessions, invitations, SSO (modelyard_platform.accounts)
    public_url: str | None = Field(
        default=None, description="Base URL of the web UI, for links made outside a request "
        "(`yard users create`); else http://127.0.0.1:8000."
    )
    trusted_proxies: str = Field(
        default="", description="Comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For/-Proto are believed ('*': any); empty: none."
    )
    web_key_sign_in: bool | None = Field(
        default=None, description="Allow signing in to the web UI with an API key; unset: only "
        "while no user exists."
    )
    password_min_length: int = Field(default=10, ge=8, description="Shortest password accepted.")
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins per account per window before throttling."
    )
    login_max_failures_per_address: int = Field(
        default=20, ge=1, description="Failed sign-ins per client address per window."
    )
    login_window_s: int = Field(default=900, gt=0, description="Sign-in throttling window.")
    session_ttl_s: int = Field(default=7 * 24 * 3600, gt=0, description="Web session lifetime.")
    invite_ttl_s: int = Field(default=7 * 24 * 3600, gt=0, description="Invitation link life.")
    reset_ttl_s: int = Field(default=3600, gt=0, description="Password-reset link lifetime.")
    smtp_host: str | None = Field(default=None, description="Send links by mail through it.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = Field(default=None, description="From the environment.")
    smtp_from: str | None = Field(default=None, description="Sender address of link mails.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection (TLS).")
    oidc_issuer: str | None = Field(default=None, description="OpenID provider; enables SSO.")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = Field(default=None, description="From the environment.")
    oidc_scopes: str = "openid email profile"
    oidc_domain_teams: dict[str, str] = Field(
        default_factory=dict, description='Email domain -> team for SSO users (JSON: '
        '{"example.com": "support"}).'
    )
    oidc_default_team: str | None = Field(
        default=None, description="Team for SSO users whose domain is not mapped; unset: such "
        "users need an existing account."
    )

    @cached_property
    def home_dir(self) -> Path:
        path = self.home.expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def models_dir(self) -> Path:
        path = self.home_dir / "models"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'modelyard.db'}"


def get_settings() -> Settings:
    """Build settings from the current environment (no global cache: tests change it)."""
    return Settings()
