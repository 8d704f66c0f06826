"""Links by mail, when an SMTP server is configured (``MODELYARD_SMTP_*``); plain smtplib."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from modelyard_registry.errors import BackendError
from modelyard_registry.settings import Settings


class MailFailed(BackendError):
    """The SMTP server refused or could not be reached; the link is still shown to the admin."""


def mail_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host and settings.smtp_from)


def send_mail(settings: Settings, *, to: str, subject: str, body: str) -> None:
    if not mail_configured(settings):
        raise MailFailed("no SMTP server is configured (MODELYARD_SMTP_HOST, MODELYARD_SMTP_FROM)")
    assert settings.smtp_host is not None and settings.smtp_from is not None
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                password = settings.smtp_password.get_secret_value() \
                    if settings.smtp_password else ""
                smtp.login(settings.smtp_user, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailFailed(f"could not send mail to {to}: {exc}") from exc


def link_mail(kind_text: str, url: str, hours: float) -> tuple[str, str]:
    """Subject and body of an invitation or reset mail."""
    subject = f"Modelyard: {kind_text}"
    body = (f"Open this link to set your Modelyard password ({kind_text}):\n\n{url}\n\n"
            f"It works once and expires in {hours:g} hours. If you did not expect it, "
            "ignore this mail.\n")
    return subject, body
