"""OCPP-J payloads on the wire, fast: the official schemas precompiled, and key-name conversions cached.

The `ocpp` library validates every request and response with `jsonschema` and converts every key
between camelCase and snake_case with regular expressions; at a thousand chargers that is most of the
emulator's CPU. Here the same schema files the library ships (``ocpp/v16/schemas``,
``ocpp/v201/schemas``) are compiled once per message type with `fastjsonschema`, and a schema breach
raises the CallError OCPP-J defines for it in the message's version (`virtual_chargers.rpc`: wrong type →
TypeConstraintViolation, value outside its enumeration or range → PropertyConstraintViolation, missing
property → 1.6 ProtocolError / 2.0.1 OccurrenceConstraintViolation…). Key conversions call the library's
own functions once per distinct key and remember the answer, so names come out exactly as the library
spells them.

The three 1.6 schemas with a ``multipleOf`` (floats with one decimal) are checked here for everything
else, then by the library's validator for that schema (``ocpp.messages.get_validator``), with numbers parsed
as `decimal.Decimal` to get the precision right, as the library does.

Our own connections (the virtual chargers, the reference CSMS) validate here, synchronously; the library's
own switch between validating in a thread pool or not (``ocpp.messages.ASYNC_VALIDATION``) is left as the
library sets it, so code of others running in the same process is not changed by importing ours.
"""

from __future__ import annotations

import asyncio
import decimal
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp
from jsonschema.exceptions import ValidationError as SchemaValidationError
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import (
    NotImplementedError,
    PropertyConstraintViolationError,
    ProtocolError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, get_validator

from virtual_chargers.rpc import action_error, call_error_code, payload_not_object, schema_error

__all__ = ["RawReplies", "from_frame", "handle_call", "send_request", "snake_keys", "to_wire", "validate"]

_LOG = logging.getLogger(__name__)

_SCHEMA_ROOT = Path(ocpp.__file__).resolve().parent
_Validator = Callable[[Any], Any]
_validators: dict[tuple[str, int, str], tuple[_Validator, bool]] = {}  # (check, the library checks multipleOf)
_camel: dict[str, str] = {}
_snake: dict[str, str] = {}


def _schema_path(ocpp_version: str, message_type_id: int, action: str) -> Path:
    name = action
    if message_type_id == MessageType.CallResult:
        name += "Response"
    elif ocpp_version != "1.6":
        name += "Request"
    return _SCHEMA_ROOT / f"v{ocpp_version.replace('.', '')}" / "schemas" / f"{name}.json"


def _without_multiple_of(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_multiple_of(v) for k, v in node.items() if k != "multipleOf"}
    if isinstance(node, list):
        return [_without_multiple_of(v) for v in node]
    return node


def _compile(ocpp_version: str, message_type_id: int, action: str) -> tuple[_Validator, bool]:
    try:
        text = _schema_path(ocpp_version, message_type_id, action).read_text(encoding="utf-8-sig")
    except OSError:
        raise NotImplementedError(details={"cause": f"Failed to validate action: {action}"}) from None
    definition = json.loads(text)
    multiple_of = '"multipleOf"' in text
    if multiple_of:
        definition = _without_multiple_of(definition)
    # The library checks every schema, the 2.0.1 ones (draft 6) too, with a Draft4Validator: the same rules
    # here (in draft 4, 1.0 is not an integer), no format checks and no defaults filled in.
    definition["$schema"] = "http://json-schema.org/draft-04/schema#"
    check = fastjsonschema.compile(definition, use_default=False, use_formats=False)
    return check, multiple_of


def validate(ocpp_version: str, message_type_id: int, action: str, payload: dict[str, Any]) -> Any:
    """Check ``payload`` of a Call or CallResult of ``action`` against the official schema.

    Returns the payload to send: ``payload`` itself, or for a ``multipleOf`` schema the library's copy
    with `decimal.Decimal` numbers (which its JSON encoder writes with one decimal).

    Raises:
        OCPPError: The CallError OCPP-J defines for the breach (`virtual_chargers.rpc.schema_error`).
    """
    key = (ocpp_version, message_type_id, action)
    try:
        check, multiple_of = _validators[key]
    except KeyError:
        check, multiple_of = _validators[key] = _compile(ocpp_version, message_type_id, action)
    if not isinstance(payload, dict):
        raise payload_not_object(ocpp_version, action)
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise schema_error(ocpp_version, exc.rule or "", f"{action}: {exc.message}") from None
    if multiple_of:
        exact = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
        try:
            get_validator(message_type_id, action, ocpp_version, parse_float=decimal.Decimal).validate(exact)
        except SchemaValidationError as exc:  # everything but the precision passed above
            raise schema_error(ocpp_version, "multipleOf", f"{action}: {exc.message}") from None
        return exact
    return payload


def _camel_key(key: str) -> str:
    try:
        return _camel[key]
    except KeyError:
        out = _camel[key] = next(iter(snake_to_camel_case({key: None})))
        return out


def _snake_key(key: str) -> str:
    try:
        return _snake[key]
    except KeyError:
        out = _snake[key] = next(iter(camel_to_snake_case({key: None})))
        return out


def to_wire(value: Any) -> Any:
    """A request or response dataclass as its JSON payload: camelCase keys, None values left out.

    The same as the library's ``remove_nones(snake_to_camel_case(serialize_as_dict(payload)))``.
    """
    cls = type(value)
    if cls is dict:
        return {_camel_key(k): to_wire(v) for k, v in value.items() if v is not None}
    if cls is list:
        return [to_wire(v) for v in value if v is not None]
    if cls in _SCALARS:
        return value
    dc_fields = getattr(cls, "__dataclass_fields__", None)
    if dc_fields is not None:
        out = {}
        for name in dc_fields:
            v = getattr(value, name)
            if v is not None:
                out[_camel_key(name)] = to_wire(v)
        return out
    if isinstance(value, dict):
        return {_camel_key(k): to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [to_wire(v) for v in value if v is not None]
    return value


_SCALARS = frozenset({str, int, float, bool})


def snake_keys(value: Any) -> Any:
    """A received payload with snake_case keys, as the library's ``camel_to_snake_case``."""
    if isinstance(value, dict):
        return {_snake_key(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def from_frame(msg: list[Any]) -> Call | CallResult | CallError:
    """A parsed OCPP-J frame as the library's message object, as ``ocpp.messages.unpack`` (without re-parsing).

    Raises:
        OCPPError: The frame is not a Call, CallResult or CallError (the same error ``unpack`` raises).
    """
    if not msg:
        raise ProtocolError(details={"cause": "Message does not contain MessageTypeId"})
    for cls in (Call, CallResult, CallError):
        if msg[0] == cls.message_type_id:
            try:
                return cls(*msg[1:])  # type: ignore[no-any-return]
            except TypeError:
                raise ProtocolError(details={"cause": "Message is missing elements."}) from None
    raise PropertyConstraintViolationError(details={"cause": f"MessageTypeId '{msg[0]}' isn't valid"})


_wants_uid_cache: dict[Any, bool] = {}


def _wants_uid(handler: Any) -> bool:
    func = getattr(handler, "__func__", handler)
    try:
        return _wants_uid_cache[func]
    except KeyError:
        out = _wants_uid_cache[func] = "call_unique_id" in inspect.signature(handler).parameters
        return out


async def handle_call(cp: Any, msg: Call) -> Any:
    """``ocpp.ChargePoint._handle_call`` with precompiled schemas and cached key conversions.

    Runs the ``@on`` handler of ``msg.action`` on ``cp``, sends its answer (or a CallError when the handler
    raises) and then runs the ``@after`` handler, as the library does.

    Raises:
        OCPPError: The request breaks its schema, or no handler takes the action (NotImplemented when the
            version does not know the action, NotSupported when it does: `virtual_chargers.rpc.action_error`).
    """
    version = cp._ocpp_version
    handlers = cp.route_map.get(msg.action) if isinstance(msg.action, str) else None
    handler = handlers.get("_on_action") if handlers is not None else None
    if handlers is None or handler is None:
        raise action_error(version, str(msg.action))
    skip = handlers.get("_skip_schema_validation", False)
    if not skip:
        validate(version, MessageType.Call, msg.action, msg.payload)
    kwargs = snake_keys(msg.payload)
    try:
        response = handler(**kwargs, call_unique_id=msg.unique_id) if _wants_uid(handler) else handler(**kwargs)
        if inspect.isawaitable(response):
            response = await response
    except Exception as exc:  # the handler's failure is the answer: its OCPP error, or InternalError
        code, description, details = call_error_code(version, exc)
        frame = [MessageType.CallError, msg.unique_id, code, description, details]
        await cp._send(json.dumps(frame, separators=(",", ":"), default=str))
        return None
    payload = to_wire(response)
    if not skip:
        payload = validate(version, MessageType.CallResult, msg.action, payload)
    await cp._send(msg.create_call_result(payload).to_json())
    after = handlers.get("_after_action")
    if after is None:
        return response
    result = after(**kwargs, call_unique_id=msg.unique_id) if _wants_uid(after) else after(**kwargs)
    if inspect.isawaitable(result):
        asyncio.ensure_future(result)
    return result


async def send_request(cp: Any, payload: Any) -> Any:
    """``ocpp.ChargePoint.call(payload, suppress=False)`` with the precompiled schemas, for a CSMS handler.

    Sends the request dataclass ``payload``, waits for the answer with its id and returns it as the
    library's ``call_result`` dataclass, as the library does, but validates both here and synchronously.

    Raises:
        OCPPError: The request or the answer breaks its schema, or the answer is a CallError (its error).
        TimeoutError: No answer within the handler's response timeout.
    """
    version = cp._ocpp_version
    action = type(payload).__name__
    body = validate(version, MessageType.Call, action, to_wire(payload))
    request = Call(str(cp._unique_id_generator()), action, body)
    async with cp._call_lock:
        await cp._send(request.to_json())
        try:
            response = await cp._get_specific_response(request.unique_id, cp._response_timeout)
        except TimeoutError:
            raise TimeoutError(f"Waited {cp._response_timeout}s for response on {request.to_json()}.") from None
    if response.message_type_id == MessageType.CallError:
        _LOG.warning("CallError answer to %s: %s", action, response)
        raise response.to_exception()
    answer = validate(version, MessageType.CallResult, action, response.payload)
    return getattr(cp._call_result, action)(**snake_keys(answer))


class RawReplies:
    """For a CSMS handler: send frames as they are and get their answers back by message id.

    Tests use it to send what a schema-bound API would refuse (malformed or unexpected frames).
    The handler provides ``_send(text)`` and calls `take_reply` on every frame it receives.
    """

    _raw_replies: dict[str, asyncio.Future[list[Any]]]
    _send: Callable[[str], Awaitable[None]]  # the handler's: send one frame

    def take_reply(self, msg: Any) -> bool:
        """Hand a CallResult or CallError to the `send_raw` waiting for its id; True if one was."""
        if not (isinstance(msg, list) and len(msg) >= 2 and msg[0] in (3, 4)):
            return False
        waiter = self._raw_replies.pop(str(msg[1]), None)
        if waiter is None:
            return False
        if not waiter.done():
            waiter.set_result(msg)
        return True

    async def send_raw(self, text: str, reply_id: str | None = None, timeout_s: float = 5.0) -> list[Any] | None:
        """Send ``text`` as it is; with ``reply_id``, wait (wall ``timeout_s``) for the answer with that id.

        Raises:
            TimeoutError: No answer with ``reply_id`` came within ``timeout_s``.
        """
        waiter: asyncio.Future[list[Any]] | None = None
        if reply_id is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._raw_replies[reply_id] = waiter
        await self._send(text)
        if waiter is None:
            return None
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        finally:
            self._raw_replies.pop(reply_id or "", None)
