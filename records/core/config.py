"""Settings from environment variables and the `.env` file that setup creates."""

from datetime import time
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
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

    # Volunteer dispatch (records/repository/dispatch.py). Per-kind values are "kind:value"
    # pairs; a kind left out falls back to the "default" pair.
    dispatch_offer_count: int = Field(default=3, ge=1, le=50)
    # Minutes volunteers have to answer an offer before the grid worker takes over.
    task_answer_minutes: str = (
        "default:120,meal_delivery:60,emergency_check:5,visit:240,repair_help:240,escort:240"
    )
    task_points: str = "default:1,meal_delivery:1,visit:2,repair_help:2,escort:2,emergency_check:3"
    # Minutes before the due time the assignee is reminded, once.
    task_reminder_minutes: float = Field(default=60, ge=0)
    # A done task its resident never confirmed counts as confirmed after this long.
    task_auto_confirm_hours: float = Field(default=24, gt=0)
    # Recently finished tasks (this many days) count against a volunteer, to share the work.
    dispatch_fairness_days: int = Field(default=30, ge=1)
    # When meals are delivered (local time): a delivery task is due then.
    canteen_delivery_times: str = "breakfast:07:30,lunch:11:30,dinner:17:30"
    # Emergencies a volunteer is sent to check on (never fire or gas: that is for 119).
    emergency_check_kinds: str = "fall,illness,trapped,other"
    emergency_check_due_minutes: float = Field(default=15, gt=0)
    # Every this many days each elderly resident living alone gets a visit task; 0 turns
    # periodic visits off. The visit is due `visit_due_hours` after it is created.
    visit_interval_days: int = Field(default=7, ge=0)
    visit_due_hours: float = Field(default=48, gt=0)

    page_size_default: int = 20
    page_size_max: int = 100

    @field_validator("task_answer_minutes", "task_points")
    @classmethod
    def _per_kind_pairs(cls, value: str) -> str:
        pairs = _pairs(value)
        if "default" not in pairs:
            raise ValueError('needs a "default:<number>" pair')
        for number in pairs.values():
            if float(number) < 0:
                raise ValueError("values must not be negative")
        return value

    @field_validator("canteen_delivery_times")
    @classmethod
    def _delivery_times(cls, value: str) -> str:
        for moment in _pairs(value).values():
            time.fromisoformat(moment)
        return value

    def task_answer_minutes_for(self, kind: str) -> float:
        """How long volunteers have to answer an offer of this kind of task."""
        pairs = _pairs(self.task_answer_minutes)
        return float(pairs.get(kind, pairs["default"]))

    def task_points_for(self, kind: str) -> int:
        """Points a task of this kind is worth."""
        pairs = _pairs(self.task_points)
        return int(float(pairs.get(kind, pairs["default"])))

    def delivery_time(self, slot: str) -> time | None:
        """Local time meals of this slot are delivered, if configured."""
        found = _pairs(self.canteen_delivery_times).get(slot)
        return time.fromisoformat(found) if found else None

    def emergency_check_kind_set(self) -> set[str]:
        """Emergency kinds that get a volunteer check-on task."""
        return {k.strip() for k in self.emergency_check_kinds.split(",") if k.strip()}

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


def _pairs(value: str) -> dict[str, str]:
    """Parse "key:value,key:value" (values may hold colons, e.g. times)."""
    pairs = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, rest = item.strip().partition(":")
        if not sep or not key or not rest:
            raise ValueError(f"expected key:value, got {item!r}")
        pairs[key.strip()] = rest.strip()
    return pairs


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()  # values come from the environment and .env
