"""One message built by Celery, turned into a template the other messages are filled from.

Celery spends most of a ``delay()`` building and routing its message. In a bulk send all
messages share the task, the options and the route, so the first one is built by
Celery's own ``send_task`` (with its signals, routing, headers and tracing) and captured
where the transport would write it. Only what differs per message is then replaced:
the task id (``id``, ``root_id`` and ``correlation_id`` when they carry it), the
transport's delivery tag, ``argsrepr``/``kwargsrepr``, ``group_index`` and the body.

A template is used only if filling it with the first message's own values reproduces
that message byte for byte, and the task id appears nowhere else in it; otherwise
(a compressed body, a header a signal handler derived from the id, a Celery whose
message format moved) there is no template and each message is built by Celery.
"""

from __future__ import annotations

import base64
import secrets
from json.encoder import encode_basestring_ascii as quoted
from typing import Any

from kombu.utils.json import dumps, loads

from platform_core.app.bulk.calls import Checked

BASE64 = "base64"


def body_json(item: Checked, embed: str) -> str:
    """The message body as kombu serializes ``(args, kwargs, embed)``."""
    return f"[{item.args_json}, {item.kwargs_json}, {embed}]"


def embed_of(body: str, item: Checked) -> str | None:
    """The shared part of a body Celery wrote for ``item``: callbacks, errbacks, chain, chord."""
    prefix = f"[{item.args_json}, {item.kwargs_json}, "
    if not (body.startswith(prefix) and body.endswith("]")):
        return None
    return body[len(prefix):-1]


def slots(headers: dict[str, Any], properties: dict[str, Any], task_id: str,
          group_index: int | None) -> dict[str, tuple[dict[str, Any], str, str]]:
    """Where each per-message value sits: slot -> (mapping, key, kind). Any header or
    property holding the task id is an id slot; ``argsrepr``/``kwargsrepr`` and
    ``group_index`` are slots wherever they appear."""
    found: dict[str, tuple[dict[str, Any], str, str]] = {}
    for side, mapping in (("h", headers), ("p", properties)):
        for key, value in mapping.items():
            if value == task_id:
                kind = "id"
            elif key in ("argsrepr", "kwargsrepr"):
                kind = key
            elif key == "group_index" and group_index is not None and value == group_index:
                kind = "gindex"
            else:
                continue
            found[f"{side}{len(found)}"] = (mapping, key, kind)
    return found


class EnvelopeTemplate:
    """A virtual transport's message (Redis, the embedded broker) as JSON text with gaps."""

    def __init__(self, parts: list[str], order: list[str], embed: str, base64_body: bool):
        self.embed = embed
        self.base64_body = base64_body
        self._quoted: dict[str, str] = {}  # argsrepr and kwargsrepr repeat: escape each once
        escaped = [p.replace("{", "{{").replace("}", "}}") for p in parts]
        self.format = "".join(
            f"{part}{{{slot}}}" for part, slot in zip(escaped, [*order, ""], strict=True)
        ).removesuffix("{}").format

    @classmethod
    def derive(cls, message: dict[str, Any], task_id: str, item: Checked,
               group_index: int | None) -> EnvelopeTemplate | None:
        properties = message.get("properties") or {}
        encoding = properties.get("body_encoding")
        raw = message.get("body")
        if not isinstance(raw, str) or encoding not in (BASE64, None):
            return None
        try:
            body = base64.b64decode(raw).decode() if encoding == BASE64 else raw
        except ValueError:
            return None
        embed = embed_of(body, item)
        if embed is None:
            return None
        copy = loads(dumps(message))
        headers, props = copy.get("headers"), copy.get("properties")
        if not isinstance(headers, dict) or not isinstance(props, dict):
            return None
        token = secrets.token_hex(8)
        places = slots(headers, props, task_id, group_index)
        places["tag"] = (props, "delivery_tag", "tag")
        places["body"] = (copy, "body", "body")
        for slot, (mapping, key, _) in places.items():
            mapping[key] = f"@{token}.{slot}@"
        text = dumps(copy)
        if task_id in text:  # the id is somewhere a template would not replace it
            return None
        marks = []
        for slot in places:
            mark = f'"@{token}.{slot}@"'
            at = text.find(mark)
            if at < 0 or text.find(mark, at + 1) >= 0:
                return None
            marks.append((at, slot, mark))
        marks.sort()
        parts, order, last = [], [], 0
        for at, slot, mark in marks:
            parts.append(text[last:at])
            order.append(places[slot][2])
            last = at + len(mark)
        parts.append(text[last:])
        template = cls(parts, order, embed, encoding == BASE64)
        tag = str(properties.get("delivery_tag"))
        if template.fill(task_id, tag, item, group_index) != dumps(message):
            return None
        return template

    def fill(self, task_id: str, tag: str, item: Checked, group_index: int | None) -> str:
        body = body_json(item, self.embed)  # base64 and the ids need no JSON escaping
        body = (base64.b64encode(body.encode()).decode() if self.base64_body
                else quoted(body)[1:-1])
        memo = self._quoted
        argsrepr = memo.get(item.argsrepr) or memo.setdefault(item.argsrepr,
                                                              quoted(item.argsrepr))
        kwargsrepr = memo.get(item.kwargsrepr) or memo.setdefault(item.kwargsrepr,
                                                                  quoted(item.kwargsrepr))
        return self.format(id=f'"{task_id}"', tag=f'"{tag}"', argsrepr=argsrepr,
                           kwargsrepr=kwargsrepr, gindex=str(group_index), body=f'"{body}"')


class AMQPTemplate:
    """A RabbitMQ message: the body and properties of the first, per message replaced."""

    def __init__(self, message: Any, task_id: str, item: Checked, group_index: int | None,
                 embed: str) -> None:
        self.message_cls = type(message)
        self.properties = dict(message.properties)
        self.headers = dict(self.properties.get("application_headers") or {})
        self.places = [(mapping is self.headers, key, kind) for mapping, key, kind in
                       slots(self.headers, self.properties, task_id, group_index).values()]
        self.embed = embed
        self.bytes_body = isinstance(message.body, bytes | bytearray)

    @classmethod
    def derive(cls, message: Any, task_id: str, item: Checked,
               group_index: int | None) -> AMQPTemplate | None:
        body = message.body
        if isinstance(body, bytes | bytearray):
            try:
                body = bytes(body).decode()
            except UnicodeDecodeError:
                return None
        if not isinstance(body, str) or message.properties.get("content_encoding") not in (
                "utf-8", None):
            return None
        embed = embed_of(body, item)
        if embed is None:
            return None
        template = cls(message, task_id, item, group_index, embed)
        replaced = {(in_headers, key) for in_headers, key, _ in template.places}
        left = [v for k, v in template.headers.items() if (True, k) not in replaced]
        left += [v for k, v in template.properties.items()
                 if k != "application_headers" and (False, k) not in replaced]
        if task_id in repr(left):  # the id is somewhere a template would not replace it
            return None
        again = template.fill(task_id, item, group_index)
        if again.body != message.body or again.properties != message.properties:
            return None
        return template

    def fill(self, task_id: str, item: Checked, group_index: int | None) -> Any:
        headers = dict(self.headers)
        properties = dict(self.properties)
        values = {"id": task_id, "argsrepr": item.argsrepr, "kwargsrepr": item.kwargsrepr,
                  "gindex": group_index}
        for in_headers, key, kind in self.places:
            (headers if in_headers else properties)[key] = values[kind]
        properties["application_headers"] = headers
        body = body_json(item, self.embed)
        return self.message_cls(body.encode() if self.bytes_body else body, **properties)
