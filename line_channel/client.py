"""LINE's Messaging API through the official SDK (`line-bot-sdk` v3), at `settings.LINE_API_BASE`.

Every call sorts LINE's answer into what the caller must do: `TokenRefused` (the channel's access
token is invalid or revoked: an admin must enter it again), `Transient` (429, 5xx, no answer:
worth another try), `ReplyTokenRefused` (the reply token is used or expired: push instead),
`Refused` (any other 4xx: retrying will not help).
"""

from dataclasses import dataclass

import urllib3
from django.conf import settings
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    PushMessageRequest,
    ReplyMessageRequest,
    TextMessage,
)

from line_channel.models import LineChannel


class LineAPIError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TokenRefused(LineAPIError):
    pass


class Transient(LineAPIError):
    pass


class ReplyTokenRefused(LineAPIError):
    pass


class Refused(LineAPIError):
    pass


def _classify(error: ApiException, *, replying: bool) -> LineAPIError:
    status = error.status or 0
    body = (error.body or b"")[:200]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    message = f"LINE answered {status}: {text}".strip()
    if status == 401:
        return TokenRefused(message, status)
    if status == 429 or status >= 500:
        return Transient(message, status)
    if replying and status == 400 and "reply token" in text.lower():
        return ReplyTokenRefused(message, status)
    return Refused(message, status)


@dataclass
class LineClient:
    access_token: str

    @classmethod
    def for_channel(cls, channel: LineChannel) -> "LineClient":
        from line_channel.selectors import channel_access_token

        return cls(access_token=channel_access_token(channel=channel))

    def _call(self, method: str, *args, replying: bool = False, **kwargs):
        configuration = Configuration(host=settings.LINE_API_BASE, access_token=self.access_token)
        try:
            with ApiClient(configuration) as api_client:
                api = MessagingApi(api_client)
                return getattr(api, method)(
                    *args, _request_timeout=settings.LINE_API_TIMEOUT_SECONDS, **kwargs
                )
        except ApiException as error:
            raise _classify(error, replying=replying) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise Transient(f"LINE could not be reached: {error}") from error

    def reply(self, *, reply_token: str, texts: list[str]) -> None:
        request = ReplyMessageRequest(
            reply_token=reply_token, messages=[TextMessage(text=text) for text in texts]
        )
        self._call("reply_message", request, replying=True)

    def push(self, *, to: str, texts: list[str], retry_key: str) -> None:
        # The retry key makes LINE send a retried push once, even if an earlier try got through.
        request = PushMessageRequest(to=to, messages=[TextMessage(text=text) for text in texts])
        self._call("push_message", request, x_line_retry_key=retry_key)

    def display_name(self, *, user_id: str) -> str:
        return self._call("get_profile", user_id).display_name or ""

    def bot_info(self) -> dict:
        """The Official Account the access token belongs to: LINE answers only a valid token."""
        info = self._call("get_bot_info")
        return {"display_name": info.display_name or "", "basic_id": info.basic_id or ""}
