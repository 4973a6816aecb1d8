"""The server's outer layer, as plain ASGI (no BaseHTTPMiddleware, which hides client disconnects):

- a body larger than `max_body_bytes` gets 413 before it is read whole (Content-Length says so at once;
  a chunked body is counted as it arrives), so a 10 MB prompt never reaches JSON parsing or the tokenizer;
- with an API key, every route but /health and the web page (/, which holds no data and asks for the key
  itself) wants `Authorization: Bearer <key>` (401 otherwise), compared
  in constant time.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

Scope = dict[str, Any]
OPEN_PATHS = ("/health", "/")  # load balancers and probes ask without a key; a browser opens the page


async def send_error(send: Any, status: int, message: str, kind: str, headers: dict[str, str] | None = None):
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": status}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: Any, max_body_bytes: int, api_key: str | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key is not None and scope["path"] not in OPEN_PATHS:
            scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.api_key):
                return await send_error(
                    send,
                    401,
                    "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                    "authentication_error",
                    {"www-authenticate": "Bearer"},
                )
        too_big = f"the request body is over the server's limit of {self.max_body_bytes} bytes"
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return await send_error(send, 413, too_big, "invalid_request_error")
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        # Read the whole body here, counting: then the app gets it at once, already known to be small.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                return await send_error(send, 413, too_big, "invalid_request_error")
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: only http.disconnect comes

        return await self.app(scope, replay, send)
