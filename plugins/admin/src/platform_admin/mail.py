"""Sending mail through the SMTP server the plugin's settings name."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from .settings import AdminSettings


def send(config: AdminSettings, to: str, subject: str, body: str) -> str:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    message.set_content(body)
    smtp_cls = smtplib.SMTP_SSL if config.smtp_ssl else smtplib.SMTP
    with smtp_cls(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        if config.smtp_username:
            password = config.smtp_password.get_secret_value() if config.smtp_password else ""
            smtp.login(config.smtp_username, password)
        smtp.send_message(message)
    return str(message["Message-ID"])
