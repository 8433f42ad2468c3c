"""The error model: every failure a client can cause is an AppError with a code, a message
(translated when rendered) and details, answered as
`{"error": {"code", "message", "details"}}` with a fitting 4xx."""

from __future__ import annotations

from typing import Any

from siyu.core.i18n import gettext


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
        **params: Any,
    ) -> None:
        self.message = message or self.message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details or {}
        self.params = params
        super().__init__(self.message)

    def translated(self, locale: str | None = None) -> str:
        return gettext(self.message, locale, **self.params)

    def to_dict(self, locale: str | None = None) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.translated(locale), "details": self.details}}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    message = "Some fields are not valid."


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    message = "Please sign in."


class PermissionDenied(AppError):
    status_code = 403
    code = "forbidden"
    message = "You do not have permission to do this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "This conflicts with the current state."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    message = "The upload is too large."


def field_error(field: str, message: str, **params: Any) -> ValidationFailed:
    """A validation error on one field, shaped like the request-validation errors."""
    return ValidationFailed(
        details={"fields": {field: gettext(message, **params)}},
    )
