"""Every table the console shows, in menu order."""

from records.admin.base import ConsoleModelView
from records.admin.views.audit import AuditEntryView
from records.admin.views.canteen import BookingView, DishView, MenuView
from records.admin.views.civic import ProposalView, VoteView
from records.admin.views.community import BuildingView, CommunityView, GridView, HouseholdUnitView
from records.admin.views.people import (
    ChannelIdentityView,
    HouseholdView,
    ResidentView,
    StaffUserView,
)
from records.admin.views.repairs import RepairView
from records.admin.views.safety import EmergencyAlertView, HandoffView
from records.admin.views.volunteers import PointsEntryView, TaskView, VolunteerView

MODEL_VIEWS: list[type[ConsoleModelView]] = [
    RepairView,
    EmergencyAlertView,
    HandoffView,
    ResidentView,
    HouseholdView,
    DishView,
    MenuView,
    BookingView,
    ProposalView,
    VoteView,
    VolunteerView,
    TaskView,
    PointsEntryView,
    CommunityView,
    GridView,
    BuildingView,
    HouseholdUnitView,
    StaffUserView,
    ChannelIdentityView,
    AuditEntryView,
]
