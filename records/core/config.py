"""Settings from environment variables and the `.env` file that setup creates."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Every knob of the records backend; `.env.example` documents each."""

    model_config = SettingsConfigDict(
        env_file=ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    linli_env: str = "development"
    records_host: str = "127.0.0.1"
    records_port: int = 8000
    # Worker processes. Keep 1 on SQLite: its writers queue best inside one process (measured
    # in docs/benchmarks.md); on PostgreSQL use about one per core.
    records_workers: int = Field(default=1, ge=1, le=32)
    records_access_log: bool = False
    database_url: str = f"sqlite:///{ROOT / 'var' / 'linli.db'}"
    service_token: str = Field(min_length=16)
    secret_key: str = Field(min_length=16)
    field_encryption_key: str
    blind_index_key: str = Field(min_length=16)
    demo_staff_password: str | None = None
    timezone: str = "Asia/Shanghai"

    sla_first_response_hours: float = 24
    sla_closure_hours: float = 48
    # How long each escalation tier may hold an overdue repair before the next tier.
    escalation_tier_hours: float = 24
    emergency_ack_minutes: float = 5
    handoff_callback_minutes: float = 30
    escalation_interval_seconds: float = 60

    proposal_support_threshold: int = 10
    proposal_answer_days: int = 15

    verification_code_hours: int = 72
    verification_max_failures: int = 5
    verification_lock_minutes: int = 60

    # "min_age:percent" pairs; the highest min_age not above the resident's age applies.
    canteen_subsidy_tiers: str = "60:10,70:20,80:30,90:50"
    canteen_max_quantity: int = 10

    page_size_default: int = 20
    page_size_max: int = 100

    def sqlalchemy_url(self) -> str:
        """The database URL with relative SQLite paths anchored at the repository root."""
        url = self.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            path = url.removeprefix(prefix)
            if path and path != ":memory:":
                return prefix + str(ROOT / path)
        return url

    def subsidy_tiers(self) -> list[tuple[int, int]]:
        """Parsed canteen subsidy tiers, sorted by minimum age."""
        tiers = []
        for pair in self.canteen_subsidy_tiers.split(","):
            age, percent = pair.split(":")
            tiers.append((int(age), int(percent)))
        return sorted(tiers)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()  # values come from the environment and .env
