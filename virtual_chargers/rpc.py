"""OCPP-J RPC framing: which frames are valid, and which CallError answers which fault, per OCPP version.

The codes and their meanings are OCPP-J's (1.6: section 4.2.3; 2.0.1: part 4, section 4.3). The `ocpp`
library swaps two of them (it answers an unknown action NotSupported and a known one without a handler
NotImplemented); here they follow the definitions: NotImplemented, the action is not known; NotSupported,
the action is recognised but this side does not support it.

A frame whose message id cannot be read, or which is not a CALL, cannot always be answered: a CALLERROR
answers a CALL, by its message id. OCPP 2.0.1 answers an unreadable frame RpcFrameworkError with message
id ``"-1"`` and an unknown message type MessageTypeNotSupported; OCPP 1.6 has neither (an unknown message
type "SHALL be ignored"), so there such frames are recorded as unanswerable. A malformed CALLRESULT or
CALLERROR is never answered in either version.
"""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, MessageType
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

__all__ = [
    "CALL_ERROR_CODES",
    "FrameError",
    "RpcError",
    "action_error",
    "call_error_code",
    "csms_at_fault",
    "parse_frame",
    "schema_error",
]

# Every CallError code of OCPP-J with its definition (the description a CallError carries).
CALL_ERROR_CODES: dict[str, dict[str, str]] = {
    "1.6": {
        "NotImplemented": "Requested Action is not known by receiver",
        "NotSupported": "Requested Action is recognized but not supported by the receiver",
        "InternalError": "An internal error occurred and the receiver was not able to process the requested "
        "Action successfully",
        "ProtocolError": "Payload for Action is incomplete",
        "SecurityError": "During the processing of Action a security issue occurred preventing receiver from "
        "completing the Action successfully",
        "FormationViolation": "Payload for Action is syntactically incorrect or not conform the PDU structure "
        "for Action",
        "PropertyConstraintViolation": "Payload is syntactically correct but at least one field contains an "
        "invalid value",
        "OccurenceConstraintViolation": "Payload for Action is syntactically correct but at least one of the "
        "fields violates occurence constraints",
        "TypeConstraintViolation": "Payload for Action is syntactically correct but at least one of the fields "
        'violates data type constraints (e.g. "somestring": 12)',
        "GenericError": "Any other error not covered by the previous ones",
    },
    "2.0.1": {
        "FormatViolation": "Payload for Action is syntactically incorrect",
        "GenericError": "Any other error not covered by the more specific error codes in this table",
        "InternalError": "An internal error occurred and the receiver was not able to process the requested "
        "Action successfully",
        "MessageTypeNotSupported": "A message with an Message Type Number received that is not supported by "
        "this implementation",
        "NotImplemented": "Requested Action is not known by receiver",
        "NotSupported": "Requested Action is recognized but not supported by the receiver",
        "OccurrenceConstraintViolation": "Payload for Action is syntactically correct but at least one of the "
        "fields violates occurrence constraints",
        "PropertyConstraintViolation": "Payload is syntactically correct but at least one field contains an "
        "invalid value",
        "ProtocolError": "Payload for Action is not conform the PDU structure",
        "RpcFrameworkError": "Content of the call is not a valid RPC Request, for example: MessageId could not be read",
        "SecurityError": "During the processing of Action a security issue occurred preventing receiver from "
        "completing the Action successfully",
        "TypeConstraintViolation": "Payload for Action is syntactically correct but at least one of the fields "
        'violates data type constraints (e.g. "somestring": 12)',
    },
}

# Which code answers which fault, by version; None: the fault cannot be answered (see the module doc).
_FAULT_CODE: dict[str, dict[str, str | None]] = {
    "1.6": {
        "unreadable": None,
        "message_type": None,
        "call_structure": "FormationViolation",
        "call_incomplete": "ProtocolError",
        "response": None,
        "payload_not_object": "FormationViolation",
        "required": "ProtocolError",
        "additionalProperties": "FormationViolation",
        "type": "TypeConstraintViolation",
        "value": "PropertyConstraintViolation",
        "occurrence": "OccurenceConstraintViolation",
    },
    "2.0.1": {
        "unreadable": "RpcFrameworkError",
        "message_type": "MessageTypeNotSupported",
        "call_structure": "RpcFrameworkError",
        "call_incomplete": "RpcFrameworkError",
        "response": None,
        "payload_not_object": "FormatViolation",
        "required": "OccurrenceConstraintViolation",
        "additionalProperties": "ProtocolError",
        "type": "TypeConstraintViolation",
        "value": "PropertyConstraintViolation",
        "occurrence": "OccurrenceConstraintViolation",
    },
}

# JSON Schema keywords → the fault they describe. maxLength: OCPP's string types (CiString20Type…) are
# data types, so a string too long breaks a data type constraint, as the `ocpp` library answers too.
_SCHEMA_RULE_FAULT = {
    "required": "required",
    "additionalProperties": "additionalProperties",
    "type": "type",
    "maxLength": "type",
    "enum": "value",
    "const": "value",
    "minimum": "value",
    "maximum": "value",
    "exclusiveMinimum": "value",
    "exclusiveMaximum": "value",
    "minLength": "value",
    "pattern": "value",
    "format": "value",
    "multipleOf": "value",
    "minItems": "occurrence",
    "maxItems": "occurrence",
    "uniqueItems": "occurrence",
}

# Codes that say the peer broke the protocol; the others (the receiver's own limits or failures) do not.
_NOT_PEER_FAULT = frozenset({"NotSupported", "InternalError", "GenericError", "SecurityError"})


def _version(ocpp_version: str) -> str:
    return "1.6" if ocpp_version == "1.6" else "2.0.1"


class RpcError(OCPPError):  # type: ignore[misc]
    """A CallError sent or received, its code in the OCPP version's spelling (see `CALL_ERROR_CODES`)."""

    code = ""  # per instance; the library's ``CallError.to_exception`` looks codes up on the classes

    def __init__(self, ocpp_version: str, code: str, cause: str, description: str | None = None) -> None:
        """The error ``code`` of ``ocpp_version``: ``description`` (default: its definition), ``cause`` as detail."""
        table = CALL_ERROR_CODES[_version(ocpp_version)]
        if code not in table:
            raise ValueError(f"{code!r} is not an OCPP {ocpp_version} CallError code ({', '.join(table)})")
        super().__init__(
            description=table[code] if description is None else description, details={"cause": cause[:500]}
        )
        self.code = code


class FrameError(Exception):
    """A received frame that is not a valid OCPP-J message.

    Attributes:
        code: The CallError code to answer with, or None when the frame cannot be answered.
        unique_id: The message id to answer to (``"-1"`` when it could not be read).
        cause: What is wrong, for the CallError's details and the violation record.
    """

    def __init__(self, code: str | None, unique_id: str, cause: str) -> None:
        """Keep what to answer."""
        super().__init__(cause)
        self.code = code
        self.unique_id = unique_id
        self.cause = cause


def _problem(ocpp_version: str, fault: str, unique_id: str, cause: str) -> FrameError:
    return FrameError(_FAULT_CODE[_version(ocpp_version)][fault], unique_id, cause)


def parse_frame(msg: Any, ocpp_version: str) -> Call | CallResult | CallError:
    """A parsed JSON frame (None if it was not JSON) as the library's message object, checked as OCPP-J.

    Raises:
        FrameError: The frame is not a well-formed CALL, CALLRESULT or CALLERROR; it says what to answer.
    """
    response = isinstance(msg, list) and msg and type(msg[0]) is int and msg[0] in (3, 4)  # CALLRESULT, CALLERROR
    if response and (len(msg) < 2 or not isinstance(msg[1], str)):
        raise _problem(ocpp_version, "response", "-1", "a CALLRESULT or CALLERROR without a string message id")
    if not isinstance(msg, list) or len(msg) < 2:
        raise _problem(ocpp_version, "unreadable", "-1", "not an OCPP-J frame: a JSON array [type, id, ...]")
    kind, uid = msg[0], msg[1]
    if not isinstance(uid, str):
        raise _problem(ocpp_version, "unreadable", "-1", f"message id {uid!r} is not a string")
    if kind == MessageType.Call and type(kind) is int:
        if len(msg) < 3 or not isinstance(msg[2], str):
            action = msg[2] if len(msg) > 2 else None
            raise _problem(ocpp_version, "call_structure", uid, f"the action {action!r} of a CALL must be a string")
        if len(msg) == 3:
            raise _problem(ocpp_version, "call_incomplete", uid, f"the CALL {msg[2]} has no payload")
        if len(msg) > 4:
            raise _problem(ocpp_version, "call_structure", uid, "a CALL is [2, messageId, action, payload]")
        return Call(uid, msg[2], msg[3])
    if kind == MessageType.CallResult and type(kind) is int:
        if len(msg) != 3:
            raise _problem(ocpp_version, "response", uid, "a CALLRESULT is [3, messageId, payload]")
        return CallResult(uid, msg[2])
    if kind == MessageType.CallError and type(kind) is int:
        if len(msg) != 5 or not isinstance(msg[2], str) or not isinstance(msg[3], str):
            raise _problem(
                ocpp_version, "response", uid, "a CALLERROR is [4, messageId, errorCode, errorDescription, details]"
            )
        return CallError(uid, msg[2], msg[3], msg[4])
    if type(kind) is not int:
        raise _problem(ocpp_version, "unreadable", uid, f"message type {kind!r} is not an integer")
    raise _problem(ocpp_version, "message_type", uid, f"message type {kind!r} is not 2, 3 or 4")


def schema_error(ocpp_version: str, rule: str, cause: str) -> RpcError:
    """The CallError for a payload that breaks its schema's keyword ``rule`` (a JSON Schema keyword)."""
    fault = _SCHEMA_RULE_FAULT.get(rule, "value")
    code = _FAULT_CODE[_version(ocpp_version)][fault]
    assert code is not None
    return RpcError(ocpp_version, code, cause)


def payload_not_object(ocpp_version: str, action: str) -> RpcError:
    """The CallError for a CALL whose payload is not a JSON object."""
    code = _FAULT_CODE[_version(ocpp_version)]["payload_not_object"]
    assert code is not None
    return RpcError(ocpp_version, code, f"the payload of {action} must be a JSON object")


def action_error(ocpp_version: str, action: str) -> RpcError:
    """The CallError for an ``action`` without a handler: NotImplemented if the version does not know it.

    An action of the version's message set is recognised: NotSupported. Any other name: NotImplemented.
    """
    known = Action16 if _version(ocpp_version) == "1.6" else Action201
    try:
        known(action)
    except ValueError:
        return RpcError(ocpp_version, "NotImplemented", f"{action} is not an OCPP {ocpp_version} action")
    return RpcError(ocpp_version, "NotSupported", f"{action} is not supported here")


_SPELLING = {
    "1.6": {"FormatViolation": "FormationViolation", "OccurrenceConstraintViolation": "OccurenceConstraintViolation"},
    "2.0.1": {"FormationViolation": "FormatViolation", "OccurenceConstraintViolation": "OccurrenceConstraintViolation"},
}


def call_error_code(ocpp_version: str, error: BaseException) -> tuple[str, str, dict[str, Any]]:
    """(code, description, details) of the CallError that answers ``error`` raised while handling a CALL.

    An `OCPPError` keeps its code (in the version's spelling; a code the version does not have becomes
    GenericError); anything else is the receiver's own failure, InternalError.
    """
    version = _version(ocpp_version)
    table = CALL_ERROR_CODES[version]
    if not isinstance(error, OCPPError):
        return "InternalError", table["InternalError"], {"cause": type(error).__name__}
    code = _SPELLING[version].get(error.code, error.code)
    if code not in table:
        return "GenericError", table["GenericError"], {"cause": f"{error.code}: {error.description}"[:500]}
    details = error.details if isinstance(error.details, dict) else {}
    details = {k: v for k, v in details.items() if k != "ocpp_message"}
    description = error.description if isinstance(error, RpcError) else table[code]
    return code, description, details


def csms_at_fault(code: str) -> bool:
    """Whether answering ``code`` means the peer broke the protocol (rather than a limit of ours)."""
    return code not in _NOT_PEER_FAULT
