"""Notifications: recipients resolved to channels, each delivery sent once and recorded.

Recipients as authors write them: `email:x@y` or a plain address; `role:<name>`
(every member of the organization whose RBAC role or approval group is
<name>); `slack:#channel` (the configured incoming webhook); `webhook:<url>`.
Anything else (`pagerduty:...`) is recorded as `skipped` with the reason, as is
Slack without a configured webhook: a notification is never reported as sent
when it was not.
"""

from __future__ import annotations

import hashlib
import smtplib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import cast, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine.errors import StepError
from engine.port import HttpRequest, Notification
from models.business import Notification as NotificationRow
from models.config import Settings
from models.identity import Membership, User
from monitoring import metrics
from tasks.ledger import EffectsLedger
from tasks.outbound import OutboundHttp

SENT, FAILED, SKIPPED = "sent", "failed", "skipped"
DEFAULT_SUBJECT = "Workflow notification"


def message_id(idempotency_key: str, recipient: str, sender: str) -> str:
    """The same Message-ID each time one notification goes to one recipient.

    SMTP has no idempotency: a process killed between the send and the ledger
    write sends again after a retry. With the same Message-ID, the recipient's
    mail system can recognise the copy (deliveries are at least once).
    """
    digest = hashlib.sha256(f"{idempotency_key}\n{recipient}".encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


@dataclass(frozen=True)
class Delivery:
    channel: str  # email | slack | webhook | other
    recipient: str  # the address, channel or URL actually used
    requested: str  # the recipient as written
    skip_reason: str | None = None


@dataclass
class DeliveryResult:
    channel: str
    recipient: str
    status: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "recipient": self.recipient,
            "status": self.status,
            "error": self.error,
        }


class Notifier:
    def __init__(
        self,
        session: Session,
        settings: Settings,
        http: OutboundHttp,
        ledger: EffectsLedger,
        *,
        organization_id: uuid.UUID,
        execution_id: uuid.UUID,
        step_id: str,
    ) -> None:
        self._session = session
        self._settings = settings
        self._http = http
        self._ledger = ledger
        self._organization_id = organization_id
        self._execution_id = execution_id
        self._step_id = step_id

    def notify(self, notification: Notification) -> dict[str, Any]:
        results = [
            self._deliver_once(delivery, notification)
            for recipient in notification.recipients
            for delivery in self._resolve(recipient)
        ]
        failed = [r for r in results if r.status == FAILED]
        summary = {
            "sent": sum(r.status == SENT for r in results),
            "failed": len(failed),
            "skipped": sum(r.status == SKIPPED for r in results),
            "deliveries": [r.to_dict() for r in results],
        }
        if failed:
            # A failed delivery fails the step so retry/on_error apply; the
            # deliveries that succeeded are in the ledger and are not repeated.
            raise StepError(
                "connection",
                f"{len(failed)} of {len(results)} notification deliveries failed: "
                f"{failed[0].error}",
                details={"notification": summary},
            )
        return summary

    # --- recipients ---------------------------------------------------------------
    def _resolve(self, recipient: str) -> list[Delivery]:
        text = recipient.strip()
        scheme, _, rest = text.partition(":")
        if scheme == "email":
            return [Delivery("email", rest.strip(), text)]
        if scheme == "role":
            return self._role_members(rest.strip(), text)
        if scheme == "slack":
            if not self._settings.slack_webhook_url:
                return [
                    Delivery("slack", rest, text, "no Slack webhook configured (SLACK_WEBHOOK_URL)")
                ]
            return [Delivery("slack", rest, text)]
        if scheme == "webhook":
            return [Delivery("webhook", rest.strip(), text)]
        if "@" in text and not rest.startswith("//"):
            return [Delivery("email", text, text)]
        channel = scheme if rest else "unknown"
        return [Delivery("other", text, text, f"unsupported notification channel {channel!r}")]

    def _role_members(self, role: str, requested: str) -> list[Delivery]:
        emails = self._session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organization_id == self._organization_id,
                or_(
                    Membership.role_name == role,
                    Membership.approver_roles.contains(cast([role], JSONB)),
                ),
            )
            .order_by(User.email)
        ).all()
        if not emails:
            return [
                Delivery(
                    "email",
                    requested,
                    requested,
                    f"no member has the role or approval group {role!r}",
                )
            ]
        return [Delivery("email", email, requested) for email in emails]

    # --- delivery -----------------------------------------------------------------
    def _deliver_once(self, delivery: Delivery, notification: Notification) -> DeliveryResult:
        key = f"{notification.idempotency_key}:{delivery.channel}:{delivery.recipient}"
        previous = self._ledger.recorded(key)
        if previous is not None:
            return DeliveryResult(
                delivery.channel, delivery.recipient, previous.get("status", SENT)
            )
        if delivery.skip_reason is not None:
            result = DeliveryResult(
                delivery.channel, delivery.recipient, SKIPPED, delivery.skip_reason
            )
        else:
            result = self._send(delivery, notification)
        self._record(delivery, notification, result)
        if result.status != FAILED:
            # Skips are ledgered too: a replay must not turn them into sends later.
            self._ledger.record(key, f"notify:{delivery.channel}", result.to_dict())
        else:
            self._session.commit()
        return result

    def _send(self, delivery: Delivery, notification: Notification) -> DeliveryResult:
        try:
            if delivery.channel == "email":
                self._send_email(delivery.recipient, notification)
            elif delivery.channel == "slack":
                self._post(
                    self._settings.slack_webhook_url,
                    {"text": notification.message, "channel": delivery.recipient},
                    notification,
                )
            else:
                self._post(delivery.recipient, self._webhook_body(notification), notification)
        except (OSError, smtplib.SMTPException, StepError) as exc:
            message = exc.message if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
            return DeliveryResult(delivery.channel, delivery.recipient, FAILED, message)
        return DeliveryResult(delivery.channel, delivery.recipient, SENT)

    def _send_email(self, address: str, notification: Notification) -> None:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = address
        message["Subject"] = notification.subject or DEFAULT_SUBJECT
        message["X-Idempotency-Key"] = notification.idempotency_key
        message["Message-ID"] = message_id(
            notification.idempotency_key, address, self._settings.smtp_from
        )
        message.set_content(notification.message)
        timeout = self._settings.outbound_timeout_seconds
        with smtplib.SMTP(
            self._settings.smtp_host, self._settings.smtp_port, timeout=timeout
        ) as smtp:
            smtp.send_message(message)

    def _post(self, url: str, body: dict[str, Any], notification: Notification) -> None:
        self._http.send(
            HttpRequest(
                "POST",
                url,
                body=body,
                timeout_seconds=self._settings.outbound_timeout_seconds,
                idempotency_key=notification.idempotency_key,
            )
        )

    def _webhook_body(self, notification: Notification) -> dict[str, Any]:
        return {
            "message": notification.message,
            "subject": notification.subject,
            "execution_id": str(self._execution_id),
            "step_id": self._step_id,
        }

    def _record(
        self, delivery: Delivery, notification: Notification, result: DeliveryResult
    ) -> None:
        now = datetime.now(UTC)
        self._session.add(
            NotificationRow(
                organization_id=self._organization_id,
                execution_id=self._execution_id,
                step_id=self._step_id,
                channel=delivery.channel,
                recipient=delivery.recipient[:500],
                subject=notification.subject,
                message=notification.message,
                status=result.status,
                error=result.error,
                sent_at=now if result.status == SENT else None,
            )
        )
        metrics.record_notification(delivery.channel, result.status)
