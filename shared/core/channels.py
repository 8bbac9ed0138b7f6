"""The one list of channels a salesperson reaches a customer by (issue 25): a lead's contact (``LeadContacted``),
a deal's logged activity (``LogActivity``) and a scheduled activity's kind (the agenda) take the same values.

``phone`` is a call (the name stored events already carry); ``task`` is an activity's kind only: work with no
customer on the line (prepare an offer, check a delivery)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    PHONE = "phone"  # a call
    EMAIL = "email"
    MEETING = "meeting"
    VIDEO_CALL = "video_call"
    CHAT = "chat"
    SMS = "sms"
    ZALO = "zalo"  # a Zalo message or call
    IN_PERSON = "in_person"
    SITE_VISIT = "site_visit"
    FREE_TRIAL = "free_trial"
    OFFER = "offer"
    DEMO = "demo"


class ActivityKind(StrEnum):
    """What a scheduled activity is: a channel of the one list, or a ``task``."""

    PHONE = "phone"
    EMAIL = "email"
    MEETING = "meeting"
    VIDEO_CALL = "video_call"
    CHAT = "chat"
    SMS = "sms"
    ZALO = "zalo"
    IN_PERSON = "in_person"
    SITE_VISIT = "site_visit"
    FREE_TRIAL = "free_trial"
    OFFER = "offer"
    DEMO = "demo"
    TASK = "task"
