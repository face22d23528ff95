"""The xAPI vocabulary the mapping uses: verb, activity-type and extension IRIs.

The IRIs are those Open edX's event-routing-backends and ralph's xAPI models use for
the same events (the ADL vocabulary, the xAPI video profile, acrossx, tincan, dod-isd).
"""

from __future__ import annotations

ADL = "http://adlnet.gov/expapi/verbs/"
VIDEO = "https://w3id.org/xapi/video/"

#: verb name -> IRI (the name is the verb's English display).
VERBS = {
    "initialized": ADL + "initialized",
    "played": VIDEO + "verbs/played",
    "paused": VIDEO + "verbs/paused",
    "seeked": VIDEO + "verbs/seeked",
    "interacted": ADL + "interacted",
    "terminated": ADL + "terminated",
    "completed": ADL + "completed",
    "attempted": ADL + "attempted",
    "evaluated": "https://w3id.org/xapi/acrossx/verbs/evaluated",
    "asked": ADL + "asked",
    "navigated": "https://w3id.org/xapi/dod-isd/verbs/navigated",
    "experienced": ADL + "experienced",
    "registered": ADL + "registered",
    "unregistered": "http://id.tincanapi.com/verb/unregistered",
}

#: activity name -> activity type IRI.
ACTIVITIES = {
    "video": VIDEO + "activity-type/video",
    "interaction": "http://adlnet.gov/expapi/activities/cmi.interaction",
    "question": "http://adlnet.gov/expapi/activities/question",
    "module": "http://adlnet.gov/expapi/activities/module",
    "course": "http://adlnet.gov/expapi/activities/course",
    "link": "http://adlnet.gov/expapi/activities/link",
    "book": "http://id.tincanapi.com/activitytype/book",
    "page": "http://activitystrea.ms/schema/1.0/page",
}

# Result extensions (the video profile).
TIME = VIDEO + "extensions/time"
TIME_FROM = VIDEO + "extensions/time-from"
TIME_TO = VIDEO + "extensions/time-to"
# Context extensions.
LENGTH = VIDEO + "extensions/length"
SPEED = VIDEO + "extensions/speed"
CC_ENABLED = VIDEO + "extensions/cc-enabled"
FULL_SCREEN = VIDEO + "extensions/full-screen"
SESSION_ID = VIDEO + "extensions/session-id"
POSITION = "http://id.tincanapi.com/extension/position"
STARTING_POSITION = "http://id.tincanapi.com/extension/starting-position"
ENDING_POSITION = "http://id.tincanapi.com/extension/ending-point"
TOTAL_ITEMS = "https://w3id.org/xapi/acrossx/extensions/total-items"
ATTEMPT = "http://id.tincanapi.com/extension/attempt-id"

#: Open edX problem response types -> xAPI interaction types (others: "other").
INTERACTION_TYPES = {
    "choiceresponse": "choice",
    "multiplechoiceresponse": "choice",
    "choicetextresponse": "choice",
    "optionresponse": "choice",
    "numericalresponse": "numeric",
    "stringresponse": "fill-in",
    "formularesponse": "fill-in",
    "symbolicresponse": "fill-in",
    "annotationresponse": "fill-in",
    "truefalseresponse": "true-false",
    "imageresponse": "matching",
    "coderesponse": "performance",
    "externalresponse": "performance",
    "customresponse": "other",
    "schematicresponse": "other",
}
