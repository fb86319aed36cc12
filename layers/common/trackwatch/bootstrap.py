"""The composition root: every adapter and service of one process, built once, from settings.

`bootstrap(settings, clock=..., clients=..., **overrides)` returns a `Container`.
Nothing is built until it is asked for, and then it is kept: a function pays at
cold start only for what its handler uses (the poller never reads the message
templates). Lambda builds one container per process from its environment
(`lambda_entry`); the tests, the local runtime and the benchmarks call `bootstrap`
with other settings, a simulated clock, an emulator's clients, or fakes for any
port (`overrides`). There is no global state to reset: a new container is a new
world.

Adapters are imported inside the properties that build them, for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from trackwatch.config import Settings
from trackwatch.errors import ConfigurationError
from trackwatch.ports import (
    ChangeFeedFactory,
    Deferrer,
    DeliveryLedger,
    EventLog,
    EventPublisher,
    FeedStateStore,
    Handover,
    HintSink,
    HintSource,
    Inbox,
    MemberChanges,
    OrderEventPublisher,
    OrderStore,
    OutboxReader,
    PollQueueWriter,
    RecipientStore,
    RejectSink,
    ScanLog,
    Sender,
    SettleScheduler,
    ShipmentRepository,
    ThresholdStore,
    TrackerFactory,
    WebhookKeys,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from trackwatch.adapters.aws import AwsClients
    from trackwatch.adapters.clickpost import ClickpostClient, CredentialsProvider
    from trackwatch.adapters.hint_queue import HintQueue
    from trackwatch.adapters.senders import SmtpCredentials
    from trackwatch.logic.business_hours import BusinessCalendar
    from trackwatch.logic.catalogue import StatusCatalogue
    from trackwatch.logic.channels import Routing
    from trackwatch.logic.delays import DelayPolicy
    from trackwatch.logic.notify_rules import NotifyRules
    from trackwatch.logic.orders import OrderStageTable
    from trackwatch.logic.registry import MessageRegistry
    from trackwatch.logic.render import Renderer
    from trackwatch.models.delays import DelayRules
    from trackwatch.models.notification import Channel
    from trackwatch.models.policy import Cadence
    from trackwatch.services.change_feed import FeedService
    from trackwatch.services.delays import LearnThresholds, OpsDigest
    from trackwatch.services.dispatch import DispatchService
    from trackwatch.services.hints import HintService
    from trackwatch.services.ingest import IngestService
    from trackwatch.services.notify import Notifier
    from trackwatch.services.orders import OrderRollUp, OrdersService
    from trackwatch.services.poll import PollService
    from trackwatch.services.publish import PublishService
    from trackwatch.services.registration import RegistrationService
    from trackwatch.services.shipments import ShipmentsService
    from trackwatch.services.webhooks import WebhookService
    from trackwatch.services.whatsapp_events import WhatsAppEvents

Clock = Callable[[], datetime]
#: A Lambda handler: (event, context) -> response.
Handler = Callable[[dict[str, Any], Any], Any]


def utc_now() -> datetime:
    """The wall clock, zone-aware."""
    return datetime.now(UTC)


def deadline_of(context: Any, margin_s: float, share: float) -> float:
    """When an invocation stops starting work, on time.monotonic(): `margin_s` before
    Lambda's timeout, or `share` of the time left if that is less, so that it still has
    time to write and report what it did instead of being killed whole."""
    remaining: float = context.get_remaining_time_in_millis() / 1000
    return time.monotonic() + remaining - min(margin_s, remaining * share)


class Overrides(TypedDict, total=False):
    """Ports to use instead of the adapters the settings describe (tests, the local runtime)."""

    shipments: ShipmentRepository
    poll_queue: PollQueueWriter
    publisher: EventPublisher
    event_log: EventLog
    images: OutboxReader
    ingest_rejects: RejectSink
    publish_rejects: RejectSink
    trackers: TrackerFactory
    change_feeds: ChangeFeedFactory
    feed_state: FeedStateStore
    hint_sink: HintSink
    hint_source: HintSource
    hint_rejects: RejectSink
    webhook_keys: WebhookKeys
    clickpost_credentials: CredentialsProvider
    catalogue: StatusCatalogue
    recipients: RecipientStore
    senders: Mapping[Channel, Sender]
    deferrer: Deferrer
    ledger: DeliveryLedger
    handover: Handover
    orders: OrderStore
    order_publisher: OrderEventPublisher
    settle_scheduler: SettleScheduler
    member_changes: MemberChanges
    order_stages: OrderStageTable
    thresholds: ThresholdStore
    scan_log: ScanLog
    ops_inbox: Inbox


class Container:
    """Every adapter and service of one process: built on first use, then kept."""

    def __init__(
        self, settings: Settings, *, clock: Clock, clients: AwsClients, overrides: Overrides
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.clients = clients
        self._overrides = overrides
        self._notifiers: dict[Channel, Notifier] = {}

    # ------------------------------------------------------------------ data

    @cached_property
    def catalogue(self) -> StatusCatalogue:
        """The status catalogue (packaged, or the deployment's file)."""
        if (given := self._overrides.get("catalogue")) is not None:
            return given
        from trackwatch.data import load_catalogue

        return load_catalogue(self.settings.data_files.status_catalogue)

    @cached_property
    def calendar(self) -> BusinessCalendar:
        """The business-hours calendar of destinations (packaged, or the deployment's file)."""
        from trackwatch.data import load_calendar

        return load_calendar(self.settings.data_files.holiday_calendar)

    @cached_property
    def delay_rules(self) -> DelayRules:
        """The dwell rules and promise sources (packaged, or the deployment's file)."""
        from trackwatch.data import load_delay_rules

        return load_delay_rules(self.catalogue, self.settings.data_files.delay_rules)

    @property
    def cadence(self) -> Cadence:
        """How often each class of shipment is polled."""
        return self.settings.cadence

    @property
    def languages(self) -> frozenset[str]:
        """The languages a registration may ask for."""
        return self.settings.registration.languages

    # ------------------------------------------------------------------ adapters

    @cached_property
    def shipments(self) -> ShipmentRepository:
        """The shipments table."""
        if (given := self._overrides.get("shipments")) is not None:
            return given
        from trackwatch.adapters.shipments_table import ShipmentsTable

        table = self.settings.table
        return ShipmentsTable(
            table.shipments_table_name, self.clients.dynamodb, table.due_index_name
        )

    @cached_property
    def poll_queue(self) -> PollQueueWriter:
        """PollQueue."""
        if (given := self._overrides.get("poll_queue")) is not None:
            return given
        from trackwatch.adapters.poll_queue import PollQueue

        return PollQueue(self.settings.poll_queue.poll_queue_url, self.clients.sqs)

    @cached_property
    def publisher(self) -> EventPublisher:
        """The shipment events topic."""
        if (given := self._overrides.get("publisher")) is not None:
            return given
        from trackwatch.adapters.events_topic import EventsTopic

        return EventsTopic(self.settings.publish.events_topic_arn, self.clients.sns)

    @cached_property
    def event_log(self) -> EventLog:
        """Every published event, for replay."""
        if (given := self._overrides.get("event_log")) is not None:
            return given
        from trackwatch.adapters.event_log import EventLogTable

        settings = self.settings.event_log
        return EventLogTable(
            settings.event_log_table_name,
            self.clients.dynamodb,
            settings.event_log_retention_days,
        )

    @cached_property
    def images(self) -> OutboxReader:
        """Reads the outbox from the table's stream images."""
        if (given := self._overrides.get("images")) is not None:
            return given
        from trackwatch.adapters.shipments_table import StreamImages

        return StreamImages()

    @cached_property
    def ingest_rejects(self) -> RejectSink:
        """Where IngestQueue messages that can never be accepted go."""
        if (given := self._overrides.get("ingest_rejects")) is not None:
            return given
        from trackwatch.adapters.reject_queue import RejectQueue

        return RejectQueue(self.settings.ingest.ingest_dead_letter_queue_url, self.clients.sqs)

    @cached_property
    def publish_rejects(self) -> RejectSink:
        """Where events that cannot be published for their content are set aside."""
        if (given := self._overrides.get("publish_rejects")) is not None:
            return given
        from trackwatch.adapters.reject_queue import RejectQueue

        return RejectQueue(self.settings.poison.publish_dead_letter_queue_url, self.clients.sqs)

    @cached_property
    def secrets(self) -> SecretsProvider:
        """Secrets Manager through powertools (cached per container, max_age per read)."""
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        return SecretsProvider(boto3_client=self.clients.secretsmanager)

    @cached_property
    def clickpost_credentials(self) -> CredentialsProvider:
        """The Clickpost key and username: from Secrets Manager, cached across invocations."""
        if (given := self._overrides.get("clickpost_credentials")) is not None:
            return given
        from trackwatch.adapters.clickpost import SecretsManagerCredentials

        settings = self.settings.clickpost
        return SecretsManagerCredentials(
            settings.secret_name, settings.secret_max_age_s, provider=self.secrets
        )

    @cached_property
    def trackers(self) -> TrackerFactory:
        """A new Clickpost client per invocation (it belongs to that invocation's event loop)."""
        if (given := self._overrides.get("trackers")) is not None:
            return given
        return self._clickpost_client

    @cached_property
    def change_feeds(self) -> ChangeFeedFactory:
        """The updated-order feed: the same Clickpost client, a new one per invocation."""
        if (given := self._overrides.get("change_feeds")) is not None:
            return given
        return self._clickpost_client

    def _clickpost_client(self) -> ClickpostClient:
        from trackwatch.adapters.clickpost import ClickpostClient
        from trackwatch.models.policy import zone

        settings = self.settings.clickpost
        return ClickpostClient(
            str(settings.base_url),
            self.clickpost_credentials,
            source_tz=zone(settings.source_timezone),
            record_tz=zone(settings.record_timezone),
            max_in_flight=settings.max_in_flight,
            max_attempts=settings.max_attempts,
            backoff_base_s=settings.backoff_base_s,
            backoff_cap_s=settings.backoff_cap_s,
            retry_budget_s=settings.retry_budget_s,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_response_bytes=settings.max_response_bytes,
        )

    @cached_property
    def feed_state(self) -> FeedStateStore:
        """The change feed's high-water mark and health."""
        if (given := self._overrides.get("feed_state")) is not None:
            return given
        from trackwatch.adapters.feed_state import FeedStateTable

        return FeedStateTable(
            self.settings.feed_state.change_feed_table_name, self.clients.dynamodb
        )

    @cached_property
    def _hint_queue(self) -> HintQueue:
        from trackwatch.adapters.hint_queue import HintQueue

        wait = self.settings.coalesce.hint_receive_wait_seconds
        return HintQueue(self.settings.hint_queue.hint_queue_url, self.clients.sqs, wait_s=wait)

    @cached_property
    def hint_sink(self) -> HintSink:
        """Where change hints go: HintQueue."""
        if (given := self._overrides.get("hint_sink")) is not None:
            return given
        from trackwatch.adapters.hint_queue import HintQueue

        return HintQueue(self.settings.hint_queue.hint_queue_url, self.clients.sqs)

    @cached_property
    def hint_source(self) -> HintSource:
        """Where the coalescer takes hints from: HintQueue."""
        if (given := self._overrides.get("hint_source")) is not None:
            return given
        return self._hint_queue

    @cached_property
    def hint_rejects(self) -> RejectSink:
        """Where hint messages that cannot be read go (HintDeadLetterQueue)."""
        if (given := self._overrides.get("hint_rejects")) is not None:
            return given
        from trackwatch.adapters.reject_queue import RejectQueue

        return RejectQueue(self.settings.hint_rejects.hint_dead_letter_queue_url, self.clients.sqs)

    @cached_property
    def webhook_keys(self) -> WebhookKeys:
        """The webhook's shared keys, from Secrets Manager (cached)."""
        if (given := self._overrides.get("webhook_keys")) is not None:
            return given
        from trackwatch.adapters.webhook_keys import SecretsManagerWebhookKeys

        settings = self.settings.webhook_secret
        return SecretsManagerWebhookKeys(
            settings.webhook_secret_name, settings.webhook_secret_max_age_s, self.secrets
        )

    @cached_property
    def thresholds(self) -> ThresholdStore:
        """The learned delay thresholds' table."""
        if (given := self._overrides.get("thresholds")) is not None:
            return given
        from trackwatch.adapters.thresholds_table import ThresholdsTable

        name = self.settings.delays.delay_thresholds_table_name
        if name is None:
            raise ConfigurationError("DELAY_THRESHOLDS_TABLE_NAME is required by this function")
        return ThresholdsTable(name, self.clients.dynamodb)

    @cached_property
    def scan_log(self) -> ScanLog:
        """The event log's scans, by the day they were logged."""
        if (given := self._overrides.get("scan_log")) is not None:
            return given
        from trackwatch.adapters.event_log import EventLogTable

        return EventLogTable(self.settings.event_log.event_log_table_name, self.clients.dynamodb)

    @cached_property
    def ops_inbox(self) -> Inbox:
        """OpsDigestQueue: the delay events since the last digest."""
        if (given := self._overrides.get("ops_inbox")) is not None:
            return given
        from trackwatch.adapters.inbox_queue import InboxQueue

        return InboxQueue(self.settings.digest.ops_digest_queue_url, self.clients.sqs)

    # ------------------------------------------------------------------ services

    @cached_property
    def dispatch_service(self) -> DispatchService:
        """The dispatcher: due shipments → PollQueue."""
        from trackwatch.services.dispatch import DispatchService

        feed = self.settings.change_feed
        return DispatchService(
            self.shipments,
            self.poll_queue,
            self.cadence,
            self.clock,
            self.settings.dispatch.calls_per_message,
            feed=feed,
            sweep=self.settings.sweep if feed.change_feed_enabled else None,
            feed_state=self.feed_state if feed.change_feed_enabled else None,
        )

    @cached_property
    def feed_service(self) -> FeedService:
        """The feed poller: the updated-order feed → HintQueue."""
        from trackwatch.services.change_feed import FeedService

        return FeedService(
            self.change_feeds,
            self.feed_state,
            self.hint_sink,
            self.settings.change_feed,
            self.clock,
        )

    @cached_property
    def hint_service(self) -> HintService:
        """The coalescer: a window's hints → the fewest polls."""
        from trackwatch.services.hints import HintService

        settings = self.settings.coalesce
        return HintService(
            self.hint_source,
            self.shipments,
            self.poll_queue,
            self.hint_rejects,
            self.clock,
            calls_per_message=self.settings.dispatch.calls_per_message,
            max_messages=settings.hint_max_messages_per_run,
            register=(
                self.registration_service.register if settings.auto_register_from_webhooks else None
            ),
        )

    @cached_property
    def webhook_service(self) -> WebhookService:
        """The webhook receiver: a Clickpost webhook → a hint on HintQueue."""
        from trackwatch.services.webhooks import WebhookService

        return WebhookService(
            self.webhook_keys,
            self.hint_sink,
            self.clock,
            max_body_bytes=self.settings.webhooks.webhook_max_body_bytes,
        )

    @cached_property
    def poll_service(self) -> PollService:
        """The poller: Clickpost → diff → one conditional write per change."""
        from trackwatch.services.poll import PollService

        return PollService(
            self.shipments,
            self.catalogue,
            self.cadence,
            self.clock,
            self.trackers,
            self.delay_policies,
        )

    @cached_property
    def delay_policies(self) -> Callable[[], DelayPolicy] | None:
        """The policy of our own stuck and late checks, its learned part kept fresh (None:
        the checks are off)."""
        settings = self.settings.delays
        if not settings.delay_checks:
            return None
        from trackwatch.services.delays import DelayPolicies

        return DelayPolicies(
            self.calendar,
            self.delay_rules,
            self.thresholds,
            self.clock,
            timedelta(minutes=settings.delay_thresholds_refresh_minutes),
        )

    @cached_property
    def learn_thresholds(self) -> LearnThresholds:
        """The daily job: the event log's scans → the learned thresholds."""
        from trackwatch.services.delays import LearnThresholds

        settings = self.settings.learning
        return LearnThresholds(
            self.scan_log,
            self.thresholds,
            self.calendar,
            self.delay_rules,
            self.clock,
            quantile=settings.delay_threshold_quantile,
            min_samples=settings.delay_min_samples,
            window_days=settings.delay_window_days,
            terminal_codes=self.catalogue.terminal_codes,
        )

    @cached_property
    def ops_digest(self) -> OpsDigest:
        """The daily operations digest."""
        from trackwatch.services.delays import OpsDigest

        settings = self.settings.digest
        recipient = settings.ops_digest_email
        return OpsDigest(
            self.ops_inbox,
            self.sender("email") if recipient is not None else None,
            recipient,
            self.catalogue,
            self.clock,
            settings.ops_digest_timezone,
        )

    @cached_property
    def publish_service(self) -> PublishService:
        """The publisher: stream outbox → event log → topic."""
        from trackwatch.services.publish import PublishService

        return PublishService(
            self.images,
            self.publisher,
            self.event_log,
            self.publish_rejects,
            self.clock,
            self.routing,
        )

    @cached_property
    def routing(self) -> Routing:
        """Which notifier queues each event is published to: the notifiers' own rules."""
        from trackwatch.logic.channels import Routing

        return Routing(self.notify_rules, self.settings.channels.enabled)

    @cached_property
    def registration_service(self) -> RegistrationService:
        """Registration, the one path every way in shares."""
        from trackwatch.services.registration import RegistrationService

        return RegistrationService(self.shipments, self.cadence, self.clock)

    @cached_property
    def shipments_service(self) -> ShipmentsService:
        """Register, show, stop, refresh and replay shipments."""
        from trackwatch.services.shipments import ShipmentsService

        return ShipmentsService(
            self.shipments,
            self.registration_service,
            self.poll_queue,
            self.event_log,
            self.publisher,
            self.cadence,
            self.clock,
            self.settings.dispatch.calls_per_message,
            routing=self.routing,
        )

    @cached_property
    def ingest_service(self) -> IngestService:
        """IngestQueue's consumer."""
        from trackwatch.services.ingest import IngestService

        return IngestService(
            self.registration_service.register, self.ingest_rejects, self.languages
        )

    # ------------------------------------------------------------------ orders

    @cached_property
    def order_stages(self) -> OrderStageTable:
        """What each status code means for an order's member (packaged, or the deployment's)."""
        if (given := self._overrides.get("order_stages")) is not None:
            return given
        from trackwatch.data import load_order_stages

        return load_order_stages(self.catalogue, self.settings.data_files.order_stages)

    @cached_property
    def orders(self) -> OrderStore:
        """The orders table."""
        if (given := self._overrides.get("orders")) is not None:
            return given
        from trackwatch.adapters.orders_table import OrdersTable

        return OrdersTable(self.settings.orders.orders_table_name, self.clients.dynamodb)

    @cached_property
    def order_publisher(self) -> OrderEventPublisher:
        """Order events go to the shipment events topic."""
        if (given := self._overrides.get("order_publisher")) is not None:
            return given
        from trackwatch.adapters.events_topic import EventsTopic

        return EventsTopic(self.settings.publish.events_topic_arn, self.clients.sns)

    @cached_property
    def settle_scheduler(self) -> SettleScheduler:
        """The roll-up's own queue, for its settle ticks."""
        if (given := self._overrides.get("settle_scheduler")) is not None:
            return given
        from trackwatch.adapters.settle_queue import SettleQueue

        return SettleQueue(
            self.settings.order_roll_up.order_settle_queue_url, self.clients.sqs, self.clock
        )

    @cached_property
    def member_changes(self) -> MemberChanges:
        """Reads the shipments stream's images as member changes."""
        if (given := self._overrides.get("member_changes")) is not None:
            return given
        from trackwatch.adapters.orders_table import StreamMemberChanges

        return StreamMemberChanges()

    @cached_property
    def order_roll_up(self) -> OrderRollUp:
        """The roll-up: shipments' writes → orders' items → order events."""
        from trackwatch.services.orders import OrderRollUp

        settings = self.settings.orders
        return OrderRollUp(
            self.orders,
            self.member_changes,
            self.order_publisher,
            self.settle_scheduler,
            self.order_stages,
            window=timedelta(minutes=settings.order_window_minutes),
            retention=timedelta(days=settings.order_retention_days),
            clock=self.clock,
        )

    @cached_property
    def orders_service(self) -> OrdersService:
        """Show an order."""
        from trackwatch.services.orders import OrdersService

        window = timedelta(minutes=self.settings.orders.order_window_minutes)
        return OrdersService(self.orders, window, self.clock)

    # ------------------------------------------------------------------ notifiers

    @cached_property
    def notify_rules(self) -> NotifyRules:
        """Which events reach customers on which channel."""
        from trackwatch.data import load_rules

        return load_rules(self.catalogue, self.settings.data_files.notify_rules)

    @cached_property
    def message_registry(self) -> MessageRegistry:
        """What each message kind says, per language and channel, and where it is registered."""
        from trackwatch.data import load_registry

        return load_registry(self.settings.data_files.message_registry)

    @cached_property
    def renderer(self) -> Renderer:
        """The message templates, read once, checked against the registry, the rules and the
        supported languages: a kind without its template somewhere refuses to start."""
        from trackwatch.data import load_templates
        from trackwatch.logic.registry import problems
        from trackwatch.logic.render import Renderer

        templates = load_templates()
        max_segments = self.settings.messages.sms_max_segments
        found = problems(
            self.message_registry, templates, self.notify_rules, self.languages, max_segments
        )
        if found:
            raise ConfigurationError("message templates: " + "; ".join(found))
        return Renderer(templates, self.message_registry, max_segments)

    @cached_property
    def recipients(self) -> RecipientStore:
        """Contact details (the shipments table) and each channel's memory of a shipment
        (NotificationsTable)."""
        if (given := self._overrides.get("recipients")) is not None:
            return given
        return self._recipient_store(orders_table=None)

    @cached_property
    def notify_recipients(self) -> RecipientStore:
        """The notifiers' recipients: with the size of a box's order in the same read."""
        if (given := self._overrides.get("recipients")) is not None:
            return given
        return self._recipient_store(orders_table=self.settings.orders.orders_table_name)

    def _recipient_store(self, orders_table: str | None) -> RecipientStore:
        from trackwatch.adapters.notify_table import NotifyTable

        name = self.settings.channels.notifications_table_name
        if name is None:
            raise ConfigurationError("NOTIFICATIONS_TABLE_NAME is required by this function")
        # Kept as long as a shipment can still cause a message after the last one it caused.
        cadence = self.cadence
        ttl_s = round((cadence.max_tracking_days * 24 + cadence.terminal_grace_hours) * 3600)
        return NotifyTable(
            self.settings.table.shipments_table_name,
            name,
            self.clients.dynamodb,
            ttl_s=ttl_s,
            clock=self.clock,
            orders_table=orders_table,
        )

    @cached_property
    def ledger(self) -> DeliveryLedger:
        """The notification records and opt-outs (NotificationsTable)."""
        if (given := self._overrides.get("ledger")) is not None:
            return given
        from trackwatch.adapters.notifications_table import NotificationsTable

        channels = self.settings.channels
        name = channels.notifications_table_name
        if name is None:
            raise ConfigurationError("NOTIFICATIONS_TABLE_NAME is required by this function")
        ttl_s = channels.notify_idempotency_ttl_hours * 3600
        return NotificationsTable(name, self.clients.dynamodb, ttl_s)

    @cached_property
    def handover(self) -> Handover:
        """Where a message goes when the next channel takes over: that channel's queue."""
        if (given := self._overrides.get("handover")) is not None:
            return given
        from trackwatch.adapters.notify_queue import ChannelQueues

        settings = self.settings.channels
        urls: dict[Channel, str] = {}
        if settings.sms_queue_url:
            urls["sms"] = settings.sms_queue_url
        if settings.whatsapp_queue_url:
            urls["whatsapp"] = settings.whatsapp_queue_url
        return ChannelQueues(urls, self.clients.sqs, self.clock)

    @cached_property
    def deferrer(self) -> Deferrer:
        """Where a message inside quiet hours waits: the notifier's own queue."""
        if (given := self._overrides.get("deferrer")) is not None:
            return given
        from trackwatch.adapters.notify_queue import NotifyQueue

        return NotifyQueue(self.settings.notify.notify_queue_url, self.clients.sqs)

    def sender(self, channel: Channel) -> Sender:
        """End User Messaging SMS (or SNS) for SMS, End User Messaging Social for WhatsApp, SES
        or the SMTP relay for e-mail, as the settings say."""
        given = self._overrides.get("senders", {}).get(channel)
        if given is not None:
            return given
        if channel == "sms":
            return self._sms_sender()
        if channel == "whatsapp":
            from trackwatch.adapters.senders import WhatsAppSender

            whatsapp = self.settings.whatsapp
            return WhatsAppSender(
                phone_number_id=whatsapp.whatsapp_phone_number_id,
                meta_api_version=whatsapp.meta_api_version,
                client=self.clients.socialmessaging,
            )
        return self._email_sender()

    def _sms_sender(self) -> Sender:
        from trackwatch.adapters.senders import EndUserMessagingSmsSender, SnsSmsSender

        sms = self.settings.sms
        if sms.sms_transport == "sns":
            return SnsSmsSender(
                sms_type=sms.sms_type,
                sender_id=sms.sms_sender_id,
                entity_id=sms.dlt_entity_id,
                client=self.clients.sns,
            )
        return EndUserMessagingSmsSender(
            origination_identity=sms.origination_identity,
            entity_id=sms.dlt_entity_id,
            configuration_set=sms.sms_configuration_set,
            client=self.clients.sms_voice,
        )

    def _email_sender(self) -> Sender:
        from trackwatch.adapters.senders import SesEmailSender, SmtpEmailSender

        email = self.settings.email
        if email.email_transport == "ses":
            return SesEmailSender(
                source=email.email_from,
                configuration_set=email.ses_configuration_set,
                client=self.clients.ses,
            )
        assert email.smtp_host is not None  # EmailSettings checks it
        return SmtpEmailSender(
            host=email.smtp_host,
            port=email.smtp_port,
            sender=email.email_from,
            starttls=email.smtp_starttls,
            credentials=self._smtp_credentials,
            timeout_s=email.smtp_timeout_s,
        )

    def _smtp_credentials(self) -> SmtpCredentials | None:
        """The relay's login from Secrets Manager (cached); None for an open relay."""
        from trackwatch.adapters.senders import smtp_credentials

        name = self.settings.email.smtp_secret_name
        return None if name is None else smtp_credentials(self.secrets, name)

    def notifier(self, channel: Channel) -> Notifier:
        """The notifier of one channel."""
        built = self._notifiers.get(channel)
        if built is None:
            from trackwatch.models.notification import PHONE_CHANNELS
            from trackwatch.services.notify import Chain, Notifier

            channels = self.settings.channels
            phone = channel in PHONE_CHANNELS
            chain = Chain(
                enabled=channels.enabled,
                delivery_window=timedelta(minutes=channels.whatsapp_delivery_window_minutes),
                handover=self.handover if phone else None,
            )
            built = Notifier(
                channel,
                rules=self.notify_rules,
                policy=self.settings.notify_policy,
                recipients=self.notify_recipients,
                sender=self.sender(channel),
                deferrer=self.deferrer,
                ledger=self.ledger,
                renderer=self.renderer,
                clock=self.clock,
                chain=chain,
            )
            self._notifiers[channel] = built
        return built

    @cached_property
    def whatsapp_events(self) -> WhatsAppEvents:
        """The WhatsApp events consumer: reports on our messages, customers' replies."""
        from trackwatch.services.whatsapp_events import WhatsAppEvents

        return WhatsAppEvents(
            ledger=self.ledger,
            handover=self.handover,
            recipients=self.recipients,
            opt_out_keywords=self.message_registry.opt_out_keywords(),
            clock=self.clock,
        )


def bootstrap(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    clients: AwsClients | None = None,
    **overrides: Unpack[Overrides],
) -> Container:
    """The container for `settings`; `overrides` name ports to use instead (see Overrides)."""
    if clients is None:
        from trackwatch.adapters.aws import AwsClients

        clients = AwsClients()
    return Container(settings, clock=clock, clients=clients, overrides=overrides)


def lambda_entry(handler: Callable[[Container], Handler]) -> Handler:
    """Lambda's handler: on the first invocation (the cold start) the container is built from
    the function's environment and `handler(container)` made; every invocation then runs it.

    Nothing is built at import, so importing a function's module (tests, the local runtime)
    reads no environment; they call `handler(their_container)` themselves.
    """
    built: list[Handler] = []

    def entry(event: dict[str, Any], context: Any) -> Any:
        if not built:
            built.append(handler(bootstrap(Settings.from_environ())))
        return built[0](event, context)

    return entry
