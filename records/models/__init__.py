"""All tables, imported so that the metadata and Alembic see every one."""

from records.models.alerts import (
    AlertStatus,
    EmergencyAlert,
    EmergencyKind,
    HandoffRequest,
    HandoffStatus,
)
from records.models.audit import AuditEntry
from records.models.base import Base
from records.models.canteen import Booking, BookingStatus, Dish, MealSlot, Menu, menu_dishes
from records.models.community import Building, Community, Grid, Household, HouseholdUnit
from records.models.idempotency import IdempotencyRecord
from records.models.notifications import DeliveryState, Notification
from records.models.people import (
    ChannelIdentity,
    ChannelKind,
    Resident,
    ResidentPhone,
    StaffRole,
    StaffUser,
    VerificationCode,
    VerificationState,
)
from records.models.proposals import Proposal, ProposalStatus, ProposalSupport
from records.models.repairs import (
    EscalationTier,
    Repair,
    RepairCategory,
    RepairEvent,
    RepairStatus,
    Urgency,
)
from records.models.volunteers import (
    OfferState,
    PointsEntry,
    Task,
    TaskKind,
    TaskOffer,
    TaskStatus,
    Volunteer,
)
from records.models.votes import (
    Ballot,
    Eligibility,
    Vote,
    VoteKind,
    VoteOption,
    VoteParticipation,
    VoteScope,
)

__all__ = [
    "AlertStatus",
    "AuditEntry",
    "Ballot",
    "Base",
    "Booking",
    "BookingStatus",
    "Building",
    "ChannelIdentity",
    "ChannelKind",
    "Community",
    "DeliveryState",
    "Dish",
    "Eligibility",
    "EmergencyAlert",
    "EmergencyKind",
    "EscalationTier",
    "Grid",
    "HandoffRequest",
    "HandoffStatus",
    "Household",
    "HouseholdUnit",
    "IdempotencyRecord",
    "MealSlot",
    "Menu",
    "Notification",
    "OfferState",
    "PointsEntry",
    "Proposal",
    "ProposalStatus",
    "ProposalSupport",
    "Repair",
    "RepairCategory",
    "RepairEvent",
    "RepairStatus",
    "Resident",
    "ResidentPhone",
    "StaffRole",
    "StaffUser",
    "Task",
    "TaskKind",
    "TaskOffer",
    "TaskStatus",
    "Urgency",
    "VerificationCode",
    "VerificationState",
    "Volunteer",
    "Vote",
    "VoteKind",
    "VoteOption",
    "VoteParticipation",
    "VoteScope",
    "menu_dishes",
]
