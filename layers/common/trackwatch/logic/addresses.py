"""Phone numbers and e-mail addresses, checked and normalised before any provider sees them.

Each library is imported where it is used: the e-mail notifier never loads phonenumbers'
metadata, the phone notifiers never load email-validator.
"""

from __future__ import annotations

from trackwatch.errors import RecipientRejectedError


def e164(phone: str, default_region: str) -> str:
    """`phone` in E.164 form (+919876543210); RecipientRejectedError if it cannot be a number."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone, default_region)
    except phonenumbers.NumberParseException:
        # `from None`: the parser's message may quote the number.
        raise RecipientRejectedError("invalid_number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise RecipientRejectedError("invalid_number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mailbox(email: str) -> str:
    """`email` normalised; RecipientRejectedError if it is not an address (no DNS lookup)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        # `from None`: the validator's message may quote the address.
        raise RecipientRejectedError("invalid_address") from None
