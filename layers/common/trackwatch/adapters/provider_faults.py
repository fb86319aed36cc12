"""Whose fault a provider's error is, code by code: the recipient's, ours, or nobody's yet.

- RECIPIENT: this address cannot be reached on this channel (an opted-out number, a number
  the provider refuses by its structured field). The failure is recorded on the shipment,
  the channel is not tried again for it, and the next channel takes over.
- OURS: the request or the account is wrong (an unregistered sender id or template, a
  spending limit, a permission, a malformed message). Retrying cannot help and the
  recipient is not to blame: the message fails to its dead-letter queue, which alarms.
- TRANSIENT: throttling and outages. The message goes back to its queue.

Decided on the error's code and, where AWS gives them, its structured `Reason` and
`Fields` — never on the message text, which is free prose and may quote the address.
A code no table knows is TRANSIENT: retried, then dead-lettered (and alarmed), never
blamed on the recipient. Each table lists every error its operation's service model
declares (tests/unit/test_senders.py checks that against botocore), plus the common
codes any AWS API may answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from trackwatch.errors import (
    NotificationProviderError,
    ProviderRejectedError,
    ProviderUnavailableError,
    RecipientRejectedError,
)


class Fault(StrEnum):
    """Whose fault an error is."""

    RECIPIENT = "recipient"
    OURS = "ours"
    TRANSIENT = "transient"


#: Codes any AWS query or JSON API may answer, whatever the operation.
COMMON: Mapping[str, Fault] = {
    "Throttling": Fault.TRANSIENT,
    "ThrottlingException": Fault.TRANSIENT,
    "Throttled": Fault.TRANSIENT,
    "TooManyRequestsException": Fault.TRANSIENT,
    "RequestLimitExceeded": Fault.TRANSIENT,
    "ServiceUnavailable": Fault.TRANSIENT,
    "ServiceUnavailableException": Fault.TRANSIENT,
    "InternalFailure": Fault.TRANSIENT,
    "InternalServerError": Fault.TRANSIENT,
    "RequestTimeout": Fault.TRANSIENT,
    "RequestTimeoutException": Fault.TRANSIENT,
    # Credentials that expired mid-invocation are refreshed on the next attempt.
    "ExpiredToken": Fault.TRANSIENT,
    "ExpiredTokenException": Fault.TRANSIENT,
    "AccessDenied": Fault.OURS,
    "AccessDeniedException": Fault.OURS,
    "UnrecognizedClientException": Fault.OURS,
    "InvalidClientTokenId": Fault.OURS,
    "IncompleteSignature": Fault.OURS,
    "MissingAuthenticationToken": Fault.OURS,
    "OptInRequired": Fault.OURS,
}

#: SNS Publish (an SMS to a phone number). SNS never says synchronously that a number is the
#: problem in a way we can read: `InvalidParameter` is also what SNS answers for a message
#: too long, a bad attribute or a sender id it will not use, and only its prose says which.
#: We check the number's form ourselves before publishing, so here it is ours, never the
#: recipient's (a bad number is not a reason to fail quietly, and a good one is not
#: disabled for good by a message that was too long).
SNS_PUBLISH: Mapping[str, Fault] = {
    "InvalidParameter": Fault.OURS,
    "ParameterValueInvalid": Fault.OURS,
    "InternalError": Fault.TRANSIENT,
    "NotFound": Fault.OURS,
    # A disabled push endpoint is the recipient's device; no SMS answers it, but it is theirs.
    "EndpointDisabled": Fault.RECIPIENT,
    "PlatformApplicationDisabled": Fault.OURS,
    "AuthorizationError": Fault.OURS,
    "KMSDisabled": Fault.OURS,
    "KMSInvalidState": Fault.OURS,
    "KMSNotFound": Fault.OURS,
    "KMSOptInRequired": Fault.OURS,
    "KMSThrottling": Fault.TRANSIENT,
    "KMSAccessDenied": Fault.OURS,
    "InvalidSecurity": Fault.OURS,
    "ValidationException": Fault.OURS,
}

#: SES SendEmail. Every modelled error is about the account or the request: SES reports a
#: recipient's bounce or complaint asynchronously, not here. `MessageRejected` covers an
#: unverified recipient in the sandbox and a message SES scanned and refused, both ours.
SES_SEND_EMAIL: Mapping[str, Fault] = {
    "MessageRejected": Fault.OURS,
    "MailFromDomainNotVerifiedException": Fault.OURS,
    "ConfigurationSetDoesNotExist": Fault.OURS,
    "ConfigurationSetSendingPausedException": Fault.OURS,
    "AccountSendingPausedException": Fault.OURS,
    # We validate the address before SES sees it; what is left is our Source or set name.
    "InvalidParameterValue": Fault.OURS,
}

#: End User Messaging SMS SendTextMessage, by code; ConflictException and ValidationException
#: are decided by their structured Reason and Fields (sms_voice_fault()).
SMS_VOICE_SEND_TEXT: Mapping[str, Fault] = {
    "ServiceQuotaExceededException": Fault.OURS,
    "ThrottlingException": Fault.TRANSIENT,
    "AccessDeniedException": Fault.OURS,
    "ResourceNotFoundException": Fault.OURS,
    "ValidationException": Fault.OURS,
    "ConflictException": Fault.OURS,
    "InternalServerException": Fault.TRANSIENT,
}
#: ConflictException reasons that are the recipient's doing.
SMS_VOICE_RECIPIENT_CONFLICTS = frozenset({"DESTINATION_PHONE_NUMBER_OPTED_OUT"})
#: A ValidationException naming this field is about the number we were given.
SMS_VOICE_DESTINATION_FIELD = "DestinationPhoneNumber"

#: End User Messaging Social SendWhatsAppMessage. Meta accepts a template for any number and
#: reports an unreachable one later, as a failed status (error 131026): nothing here is the
#: recipient's fault. DependencyException is Meta's side failing.
SOCIAL_SEND_WHATSAPP: Mapping[str, Fault] = {
    "ValidationException": Fault.OURS,
    "AccessDeniedException": Fault.OURS,
    "InvalidParametersException": Fault.OURS,
    "ResourceNotFoundException": Fault.OURS,
    "ThrottledRequestException": Fault.TRANSIENT,
    "InternalServiceException": Fault.TRANSIENT,
    "DependencyException": Fault.TRANSIENT,
}


def code_of(exc: ClientError) -> str:
    """The error's code."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _member(response: Mapping[str, Any], name: str) -> Any:
    # botocore puts a modelled error's members beside "Error" (JSON protocols) or in it.
    return response.get(name, response.get("Error", {}).get(name))


def fault_of(table: Mapping[str, Fault], code: str) -> Fault:
    """The fault `code` means in `table` (then the common codes); TRANSIENT if unknown."""
    return table.get(code) or COMMON.get(code) or Fault.TRANSIENT


def sms_voice_fault(exc: ClientError) -> Fault:
    """SendTextMessage's errors, with ConflictException and ValidationException decided by
    their structured Reason and Fields."""
    code = code_of(exc)
    if code == "ConflictException":
        reason = _member(exc.response, "Reason")
        return Fault.RECIPIENT if reason in SMS_VOICE_RECIPIENT_CONFLICTS else Fault.OURS
    if code == "ValidationException":
        fields = _member(exc.response, "Fields") or []
        names = {f.get("Name") for f in fields if isinstance(f, Mapping)}
        return Fault.RECIPIENT if SMS_VOICE_DESTINATION_FIELD in names else Fault.OURS
    return fault_of(SMS_VOICE_SEND_TEXT, code)


def error_for(
    fault: Fault, provider: str, code: str, detail: str = ""
) -> NotificationProviderError:
    """The typed error of a fault: the recipient's, ours or transient (no provider prose)."""
    reason = f"{provider}_{code}" + (f"_{detail}" if detail else "")
    if fault is Fault.RECIPIENT:
        return RecipientRejectedError(reason)
    if fault is Fault.OURS:
        return ProviderRejectedError(reason)
    return ProviderUnavailableError(f"{provider} failed: {code}")
