"""Composition root: Settings -> adapters -> services -> API, and the node's lifecycle."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from platone_bal.adapters.device_registry import Web3DeviceRegistry
from platone_bal.adapters.dynsec import DynsecBroker, DynsecControl
from platone_bal.adapters.mosquitto_process import (
    SERVICE_USERNAME,
    ManagedMosquitto,
    MosquittoConfig,
    private_socket_path,
)
from platone_bal.adapters.mqtt_publisher import MqttPublisher
from platone_bal.adapters.node_keys import NodeKeys
from platone_bal.adapters.secret_files import read_or_create_secret
from platone_bal.adapters.wallets import Wallets
from platone_bal.adapters.web3_chain import Web3GrantLedger
from platone_bal.api import ApiContext, create_api
from platone_bal.api.body_guard import BodyGuard
from platone_bal.api.gateway import GatewayConfig
from platone_bal.api.tokens import TokenSigner
from platone_bal.bootstrap import kafka_config, open_archive_files, open_store
from platone_bal.chain_setup import OpenChain, open_chain
from platone_bal.config import Settings
from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.entrypoints.chain_rpc import ReadOnlyRpc, create_rpc_app
from platone_bal.entrypoints.http_server import HttpServer, http_server
from platone_bal.entrypoints.mqtt_subscriber import MqttSubscriber
from platone_bal.ports import Store
from platone_bal.services.anchorer import Anchorer
from platone_bal.services.archiver import ArchiveJob, Archiver
from platone_bal.services.audit_trail import AuditTrail
from platone_bal.services.broker_sync import BrokerSync
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.clients import ClientService
from platone_bal.services.decision_recorder import DecisionRecorder
from platone_bal.services.device_keys import DeviceKeys
from platone_bal.services.devices import DeviceService
from platone_bal.services.egress import Egress, KafkaEgress
from platone_bal.services.grants import GrantService
from platone_bal.services.ingest import IngestService, now
from platone_bal.services.journal_replay import JournalReplay
from platone_bal.services.key_admin import KeyAdmin
from platone_bal.services.leader_duties import Duty, LeaderDuties
from platone_bal.services.leadership import Leadership
from platone_bal.services.periodic import PeriodicWorker
from platone_bal.services.recorder import Recorder
from platone_bal.services.restore_jobs import Lifecycle, RestoreJobs
from platone_bal.services.sequencer import Sequencer
from platone_bal.services.setpoint_delivery import SetPointDelivery
from platone_bal.services.setpoints import SetPointService
from platone_bal.services.users import UserService
from platone_bal.status import node_status

log = logging.getLogger(__name__)


def keystore_passphrase(settings: Settings) -> str:
    """The passphrase of all keystores: the setting, else the node's generated secret."""
    if settings.key_passphrase:
        return settings.key_passphrase.get_secret_value()
    return read_or_create_secret(settings.secrets_dir / "keystore-passphrase")


@dataclass(frozen=True)
class BrokerLogin:
    """How the node's own MQTT clients (ingest, egress, rule sync) reach the broker."""

    url: str
    username: str
    password: str
    ca_file: Path | None
    client_id: str
    """The ingest session's id; egress and the rule sync append to it."""


RECURSION_LIMIT = 12_288
"""What py-evm's EVM needs (its own EVM_RECURSION_LIMIT). py_ecc raises the limit to
100,000 when imported, past what the C stack holds: C-level recursion (a JSON parser
fed a deep document) then crashed the process instead of raising RecursionError."""


class Node:
    """One BAL node: store, users, ingest, broker and API wired from Settings."""

    def __init__(self, settings: Settings, *, store: Store | None = None) -> None:
        """Wire the node from `settings`; `store` replaces the one they name (tests)."""
        sys.setrecursionlimit(RECURSION_LIMIT)
        self.settings = settings
        # The data directory holds password hashes and keystores: owner only.
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings.data_dir.chmod(0o700)
        self.store = store if store is not None else open_store(settings)
        self.name = settings.node_name or (
            f"{socket.gethostname()}-{read_or_create_secret(settings.secrets_dir / 'node-id', 4)}"
        )
        """This node among the BAL's nodes: its lease holder name and, with shared
        ingest, its broker session."""
        self.wallets = Wallets(keystore_passphrase(settings))
        self.keys = NodeKeys(self.store, self.wallets, legacy_dir=settings.data_dir)
        self.users = UserService(self.store, self.wallets)
        self.grants = GrantService(self.store, now)
        self.devices = DeviceService(self.store, now)
        # one checkpointer (and, in serve(), one anchorer) per log: readings, the access
        # audit, set points
        self.checkpointers = {
            log: Checkpointer(
                self.store,
                log_id=log,
                private_key=self.keys["log-signer"].private_key,
                clock=now,
                min_interval=settings.checkpoint_interval,
            )
            for log in (settings.log_id, AUDIT_LOG, SETPOINT_LOG)
        }
        self.checkpointer = self.checkpointers[settings.log_id]
        self.audit_checkpointer = self.checkpointers[AUDIT_LOG]
        self.audit = AuditTrail(self.store, now, on_append=self.audit_checkpointer.log_grew)
        self.setpoints = SetPointService(
            self.store, now, on_append=self.checkpointers[SETPOINT_LOG].log_grew
        )
        self.tokens = TokenSigner(self.keys.secret("token-key"), settings.token_ttl)
        self.ingest = IngestService(
            self.store,
            log_id=settings.log_id,
            max_payload_bytes=settings.max_payload_bytes,
            batch_size=settings.ingest_batch,
            on_commit=self.checkpointer.log_grew,
        )
        self.ingest.on_answers = self.checkpointers[SETPOINT_LOG].log_grew
        self.archiver = Archiver(
            self.store,
            open_archive_files(settings),
            settings.log_id,
            self.name,
            hot_days=settings.hot_days,
            keep_restored_days=settings.restore_keep_days,
            clock=now,
        )
        self.mosquitto, self.broker_login = self._broker()
        self.dynsec, self.broker_sync = self._broker_sync()
        journal = self.mosquitto.journal if self.mosquitto is not None else None
        self.journal_replay = (
            JournalReplay(journal, self.store, self.ingest) if journal is not None else None
        )
        # The chain opens in serve(): commands such as `bal users add` need no chain.
        self.chain: OpenChain | None = None
        self.device_ledger: Web3DeviceRegistry | None = None
        self.device_keys: DeviceKeys | None = None
        self.key_admin: KeyAdmin | None = None
        self.anchorer: Anchorer | None = None
        self.api = create_api(
            ApiContext(
                self.store,
                self.users,
                self.tokens,
                ClientService(self.store),
                self.ingest,
                self.grants,
                self.devices,
                self.audit,
                anchor_lookup=lambda: self.chain.anchor_lookup() if self.chain else None,
                key_admin=lambda: self.key_admin,
                node_status=self.status,
                setpoints=self.setpoints,
                lifecycle=Lifecycle(self.archiver, RestoreJobs(self.archiver)),
                chain_rpc_port=settings.chain_rpc_port
                if settings.chain == "embedded" and settings.chain_rpc_port
                else None,
            ),
            GatewayConfig(settings.rate_limit, settings.rate_burst, settings.cors_origins),
            session_key=self.keys.secret("session-key"),
            secure_cookies=settings.tls is not None,
            max_body_bytes=settings.max_body_bytes,
        )
        self.leadership: Leadership | None = None
        self.leader_duties: LeaderDuties | None = None
        self._server: HttpServer | None = None
        self._rpc_server: HttpServer | None = None
        self._stop_requested = threading.Event()

    def _broker(self) -> tuple[ManagedMosquitto | None, BrokerLogin]:
        """The node's own Mosquitto (embedded default) or the outside one's address."""
        settings = self.settings
        if settings.broker == "embedded":
            password = read_or_create_secret(settings.secrets_dir / "mqtt-service-password")
            mosquitto = ManagedMosquitto(
                MosquittoConfig(
                    directory=settings.data_dir / "mosquitto",
                    bind=settings.bind,
                    port=settings.mqtt_port,
                    tls_port=settings.mqtt_tls_port,
                    tls=settings.tls,
                    service_password=password,
                    socket_path=private_socket_path(),
                    binary=settings.mosquitto_binary,
                    autosave_changes=settings.mosquitto_autosave,
                    journal=settings.mosquitto_journal,
                    journal_fsync=settings.mosquitto_journal_fsync,
                )
            )
            # ':' is in no login, so on the public listener (client id = login) no one
            # can take the node's sessions over
            login = BrokerLogin(
                mosquitto.config.url, SERVICE_USERNAME, password, None, "bal:ingest"
            )
            return mosquitto, login
        assert settings.mqtt_username and settings.mqtt_password
        client_id = settings.mqtt_client_id
        if settings.mqtt_shared_group:  # a session per node
            client_id = f"{client_id}-{self.name}"
        login = BrokerLogin(
            settings.mqtt_url,
            settings.mqtt_username,
            settings.mqtt_password.get_secret_value(),
            settings.mqtt_ca_file,
            client_id,
        )
        return None, login

    def _broker_sync(self) -> tuple[DynsecControl | None, BrokerSync | None]:
        """With Mosquitto's Dynamic Security: its control connection and the worker that
        keeps its rules, told of every password and every change to users, devices and
        grants. The node's own Mosquitto always runs the plugin."""
        settings = self.settings
        if settings.broker == "mosquitto" and not settings.mqtt_dynsec:
            return None, None
        login = self.broker_login
        control = DynsecControl(
            login.url,
            login.username,
            login.password,
            client_id=f"{login.client_id}-dynsec",
            ca_file=login.ca_file,
        )
        sync = BrokerSync(
            self.store,
            DynsecBroker(control),
            now,
            resync=settings.broker_resync,
            audit=self.audit,
        )
        for service in (self.users, self.devices):
            service.on_password = sync.password_set
            service.on_change = sync.settle
        self.grants.on_change = sync.settle
        return control, sync

    def status(self) -> dict[str, str]:
        """Broker, chain and leadership in words, for the operators' page."""
        status = node_status(self.settings, self.mosquitto, self.broker_sync, self.chain)
        if self.leadership is not None:
            fence = self.leadership.fence()
            queued = self.store.queued_leaves()
            status["Node"] = f"{self.name}: " + (
                f"leads (term {fence.token}); {queued} leaves wait for the sequencer"
                if fence is not None
                else f"stands by (another node leads); {queued} leaves queued for it"
            )
        return status

    def bootstrap_admin(self) -> str | None:
        """Create the first admin; returns its generated password when none was set."""
        password = self.settings.admin_password
        return self.users.ensure_admin(password.get_secret_value() if password else None)

    def request_stop(self) -> None:
        """Ask a running `serve()` to shut down cleanly; safe from any thread."""
        self._stop_requested.set()
        for server in (self._server, self._rpc_server):
            if server is not None:
                server.should_exit = True

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run ingest, the broker (or the external subscriber) and the API until stopped."""
        settings = self.settings
        self.chain = await asyncio.to_thread(open_chain, settings, self.keys, self.store)
        chain = self.chain.chain
        anchorers = [
            Anchorer(self.store, chain, log_id=log, interval=settings.anchor_interval)
            for log in self.checkpointers
        ]
        self.anchorer = anchorers[0]
        self.device_ledger = Web3DeviceRegistry(
            chain.w3, chain.deployment, self.keys["chain-admin"].private_key
        )
        self.device_keys = DeviceKeys(self.device_ledger, interval=settings.key_poll_interval)
        await asyncio.to_thread(self.device_keys.start)
        self.ingest.records.keys = self.device_keys
        self.key_admin = KeyAdmin(self.store, self.device_ledger, self.device_keys)
        recorder_key = self.keys["anchorer"].private_key
        decisions = DecisionRecorder(
            self.store, Web3GrantLedger(chain.w3, chain.deployment, recorder_key), self.wallets
        )
        self.ingest.start()
        subscriber: MqttSubscriber | None = None
        publisher: MqttPublisher | None = None
        leadership: Leadership | None = None
        outgoing: list[PeriodicWorker] = []
        login = self.broker_login
        try:
            if self.mosquitto is not None:
                await asyncio.to_thread(self.mosquitto.start)
            if self.dynsec is not None and self.broker_sync is not None:
                self.dynsec.start()
                await asyncio.to_thread(self.broker_sync.first_sync, 30.0)
                self.broker_sync.start()
            publisher = MqttPublisher(
                login.url,
                login.username,
                login.password,
                client_id=f"{login.client_id}-egress",
                ca_file=login.ca_file,
            )
            publisher.start()
            # readings on certified/ and granted/, set points on setpoints/
            outgoing = [
                Egress(self.store, publisher, log_id=settings.log_id),
                SetPointDelivery(self.store, publisher),
            ]
            if (kafka := kafka_config(settings)) is not None:
                from platone_bal.adapters.kafka_sink import KafkaSink

                sink = KafkaSink(kafka, settings.kafka_delivery_timeout)
                outgoing.append(KafkaEgress(self.store, sink, log_id=settings.log_id))
            archive_job = ArchiveJob(self.archiver, settings.archive_interval)
            leadership = self._leadership([*anchorers, decisions, archive_job, *outgoing])
            await asyncio.to_thread(leadership.start)
            subscriber = MqttSubscriber(
                login.url,
                login.username,
                login.password,
                client_id=login.client_id,
                ingest=self.ingest,
                ca_file=login.ca_file,
                shared_group=settings.mqtt_shared_group,
            )
            await asyncio.to_thread(subscriber.start)
            if self.journal_replay is not None:
                self.journal_replay.start()
                self.journal_replay.wake()
            self._server = http_server(
                self.api, settings.bind, settings.http_port, settings.tls, settings.trusted_proxies
            )
            servers = [self._server]
            if self.chain.embedded is not None and settings.chain_rpc_port:
                rpc = ReadOnlyRpc(Web3(self.chain.embedded.provider), settings.chain_id)
                rpc_app = BodyGuard(create_rpc_app(rpc), max_bytes=settings.max_body_bytes)
                self._rpc_server = http_server(
                    rpc_app, settings.bind, settings.chain_rpc_port, settings.tls
                )
                servers.append(self._rpc_server)
            self._install_signal_handlers()
            if self._stop_requested.is_set():
                return
            serving = [asyncio.create_task(server.serve()) for server in servers]
            while not all(server.started for server in servers) and not any(
                task.done() for task in serving
            ):
                await asyncio.sleep(0.02)
            if all(server.started for server in servers) and on_ready is not None:
                on_ready()
            else:
                self.request_stop()
            await asyncio.gather(*serving)
        finally:
            await asyncio.to_thread(self._shut_down, subscriber, publisher, outgoing)
            if leadership is not None:  # the leader's last checkpoints; the lease let go
                log.info("stopping: last checkpoints, the lease let go")
                await asyncio.to_thread(leadership.stop)
            for recorder in (self.ingest.recorder, self.audit.recorder):
                recorder.leader = None
            await asyncio.to_thread(self.device_keys.stop)
            self.chain.close()
            self.store.close()

    def _leadership(self, duties: list[Duty]) -> Leadership:
        """This node's claim on the lease that decides which node sequences, signs,
        anchors and publishes (the others take readings and answer the API); the
        recorders write through the sequencer while another node leads."""
        settings = self.settings
        leader_duties = LeaderDuties(
            lambda fence: Sequencer(
                self.store,
                Recorder(self.store),
                fence,
                on_grown=lambda log: self.checkpointers[log].log_grew(),
            ),
            list(self.checkpointers.values()),
            duties,
        )
        self.leadership = Leadership(
            self.store,
            self.name,
            seconds=settings.leader_lease,
            on_gain=leader_duties.gain,
            on_loss=leader_duties.lose,
        )
        self.leader_duties = leader_duties
        for recorder in (self.ingest.recorder, self.audit.recorder):
            recorder.leader = self.leadership.fence
        if self.broker_sync is not None:
            leadership = self.leadership
            self.broker_sync.audits = lambda: leadership.fence() is not None
        return self.leadership

    def _shut_down(
        self,
        subscriber: MqttSubscriber | None,
        publisher: MqttPublisher | None,
        outgoing: list[PeriodicWorker],
    ) -> None:
        """Stop taking work, write and acknowledge what was taken, then let go of the
        broker, within `BAL_SHUTDOWN_GRACE`. Whatever was taken but not written stays
        unacknowledged: the broker (its state saved on its own SIGTERM) delivers it
        again at the next start."""
        deadline = time.monotonic() + self.settings.shutdown_grace
        log.info("stopping: writing what was taken")
        if subscriber is not None:
            subscriber.pause()
        if self.journal_replay is not None:
            self.journal_replay.stop()
        # leave a third of the grace to disconnect and to let Mosquitto save
        self.ingest.stop(timeout=max(1.0, self.settings.shutdown_grace * 2 / 3))
        if subscriber is not None:
            subscriber.stop()
        log.info("stopping: written; letting go of the broker")
        if self.leader_duties is not None:  # what needs the broker stops before it
            self.leader_duties.wind_down(outgoing)
        if publisher is not None:
            publisher.stop()
        if self.broker_sync is not None:
            self.broker_sync.stop()
        if self.dynsec is not None:
            self.dynsec.stop()
        if self.mosquitto is not None:
            self.mosquitto.stop(timeout=max(2.0, deadline - time.monotonic()))

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop)
