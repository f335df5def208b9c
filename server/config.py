"""One typed settings object, read from the environment once.

Secrets that are not given are generated once and kept in the data dir with
mode 0600, so a restart (and `droproom token`) signs with the same key.
"""

import json
import os
import secrets
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from commerce.config import SHOP_DEFAULTS

# roomrelay (issue 14): how Socket.IO emits travel between processes
SIO_RELAYS = ("rooms", "socketio")


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _ice_servers(value: str | None) -> tuple[dict[str, Any], ...]:
    """`DROPROOM_ICE_SERVERS`: a JSON list of {"urls", "username"?, "credential"?}
    or comma-separated URLs (stun:host:port, turn:host:port)."""
    if not value:
        return ()
    if value.lstrip().startswith("["):
        parsed = json.loads(value)
        if not isinstance(parsed, list) or not all(isinstance(s, dict) for s in parsed):
            raise ValueError("DROPROOM_ICE_SERVERS must be a JSON list of objects")
        return tuple(parsed)
    return tuple({"urls": url} for url in _csv(value))


def kept_secret(data_dir: Path, name: str) -> str:
    """The secret in `data_dir/name`, made once (mode 0600) if missing."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    secret: str
    admin_key: str
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    multi_node: bool = False
    redis_cluster: bool = False
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_js_url: str | None = None
    ice_hosts: tuple[str, ...] = ()
    ice_public_ip: str | None = None
    ice_servers: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    whep_per_identity: int = 3
    whep_per_room: int = 1000
    whep_per_process: int = 1000
    media_connect_timeout_s: float = 20.0
    live_grace_s: float = 60.0
    cart_ttl_s: int = SHOP_DEFAULTS.cart_ttl_s
    checkout_hold_s: int = SHOP_DEFAULTS.checkout_hold_s
    reconcile_after_s: int = SHOP_DEFAULTS.reconcile_after_s
    checkout_decline_hold_s: int = SHOP_DEFAULTS.decline_hold_s
    checkout_max_attempts: int = SHOP_DEFAULTS.max_attempts
    public_url_override: str | None = None
    restart_backoff_s: float = 1.0
    asset_origins: tuple[str, ...] = ()
    # delivery (issue 10): where audio files live, and how long a download link lasts
    storage_url: str | None = None
    download_ttl_s: int = 600
    # accounts branch: mail and the client address behind proxies
    smtp_url: str | None = None
    mail_from: str = "droproom <no-reply@localhost>"
    trusted_proxies: tuple[str, ...] = ()
    # tonesurface (issue 10): the tone processing pool and its jobs' leases
    tone_job_timeout_s: float = 120.0
    tone_memory_mb: int = 1024
    tone_nice: int = 10
    tone_lease_s: float = 30.0
    # episodes branch (issue 12): how long before an episode its followers are mailed
    reminder_lead_s: int = 900
    # webhooksout (issue 13): outbound webhooks may reach loopback/private addresses (tests)
    webhook_allow_private: bool = False
    # studioapi (issue 12): how long an invite link lasts unless its owner says
    invite_ttl_s: int = 7 * 24 * 3600
    # workers (issue 14): which node and which of its worker processes this is
    node: str = ""
    worker: str = "w1"
    workers: int = 0  # `serve` without --workers: 0 means the machine's cores
    # roomrelay (issue 14): "rooms" relays a room's emits only to the processes
    # holding its clients; "socketio" falls back to python-socketio's AsyncRedisManager
    sio_relay: str = "rooms"
    # hls (issue 15): the owner of a room's media also writes its mix as HLS
    hls: bool = True
    hls_segment_s: float = 2.0
    hls_window: int = 6
    hls_bitrate: int = 64000
    hls_base_url: str | None = None  # a CDN in front of the storage's hls/ keys
    hls_link_ttl_s: float = 600.0  # an HLS link token's life (the page renews it)
    # medialease (issues 14/15): the room's media lease and where this node is
    media_lease_ttl_s: float = 3.0
    region: str = ""
    node_url_override: str | None = None  # this node's own URL (a 307 sends publishers there)
    # bigroom (issue 14): above this many people a plain listener's join or leave
    # reaches the room only as counts, at most every big_room_presence_s per process
    big_room: int = 500
    big_room_presence_s: float = 2.0

    @property
    def public_url(self) -> str:
        """The base URL people and webhooks reach this server at."""
        if self.public_url_override:
            return self.public_url_override.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def node_url(self) -> str:
        """This node's own URL (medialease): `DROPROOM_NODE_URL`, else the
        public URL. Behind one load balancer for several nodes, set it per node."""
        if self.node_url_override:
            return self.node_url_override.rstrip("/")
        return self.public_url

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        data_dir = Path(overrides.pop("data_dir", None) or _env("DROPROOM_DATA_DIR") or "./var")
        data_dir = data_dir.resolve()
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "secret": _env("DROPROOM_SECRET") or kept_secret(data_dir, "secret"),
            "admin_key": _env("DROPROOM_ADMIN_KEY") or kept_secret(data_dir, "admin_key"),
            "host": _env("DROPROOM_HOST") or "127.0.0.1",
            "port": int(_env("PORT") or _env("DROPROOM_PORT") or 8080),
            "redis_url": _env("REDIS_URL"),
            "multi_node": (_env("DROPROOM_MULTI_NODE") or "0") in ("1", "true", "yes"),
            "redis_cluster": (_env("DROPROOM_REDIS_CLUSTER") or "0") in ("1", "true", "yes"),
            "stripe_secret_key": _env("STRIPE_SECRET_KEY"),
            "stripe_publishable_key": _env("STRIPE_PUBLISHABLE_KEY"),
            "stripe_webhook_secret": _env("STRIPE_WEBHOOK_SECRET"),
            "stripe_api_base": _env("STRIPE_API_BASE"),
            "stripe_js_url": _env("STRIPE_JS_URL"),
            "ice_hosts": _csv(_env("DROPROOM_ICE_HOSTS")),
            "ice_public_ip": _env("DROPROOM_ICE_PUBLIC_IP"),
            "ice_servers": _ice_servers(_env("DROPROOM_ICE_SERVERS")),
            "whep_per_identity": int(_env("DROPROOM_WHEP_PER_IDENTITY") or 3),
            "whep_per_room": int(_env("DROPROOM_WHEP_PER_ROOM") or 1000),
            "whep_per_process": int(_env("DROPROOM_WHEP_PER_PROCESS") or 1000),
            "media_connect_timeout_s": float(_env("DROPROOM_MEDIA_CONNECT_TIMEOUT_S") or 20),
            "live_grace_s": float(_env("DROPROOM_LIVE_GRACE_S") or 60),
            "cart_ttl_s": int(_env("DROPROOM_CART_TTL_S") or SHOP_DEFAULTS.cart_ttl_s),
            "checkout_hold_s": int(
                _env("DROPROOM_CHECKOUT_HOLD_S") or SHOP_DEFAULTS.checkout_hold_s
            ),
            "reconcile_after_s": int(
                _env("DROPROOM_RECONCILE_AFTER_S") or SHOP_DEFAULTS.reconcile_after_s
            ),
            "checkout_decline_hold_s": int(
                _env("DROPROOM_DECLINE_HOLD_S") or SHOP_DEFAULTS.decline_hold_s
            ),
            "checkout_max_attempts": int(
                _env("DROPROOM_CHECKOUT_MAX_ATTEMPTS") or SHOP_DEFAULTS.max_attempts
            ),
            "public_url_override": _env("DROPROOM_PUBLIC_URL"),
            "restart_backoff_s": float(_env("DROPROOM_RESTART_BACKOFF_S") or 1.0),
            "asset_origins": _csv(_env("DROPROOM_ASSET_ORIGINS")),
            # delivery (issue 10)
            "storage_url": _env("DROPROOM_STORAGE_URL"),
            "download_ttl_s": int(_env("DROPROOM_DOWNLOAD_TTL_S") or 600),
            # accounts branch
            "smtp_url": _env("DROPROOM_SMTP_URL"),
            "mail_from": _env("DROPROOM_MAIL_FROM") or "droproom <no-reply@localhost>",
            "trusted_proxies": _csv(_env("DROPROOM_TRUSTED_PROXIES")),
            # tonesurface (issue 10)
            "tone_job_timeout_s": float(_env("DROPROOM_TONE_JOB_TIMEOUT_S") or 120),
            "tone_memory_mb": int(_env("DROPROOM_TONE_MEMORY_MB") or 1024),
            "tone_nice": int(_env("DROPROOM_TONE_NICE") or 10),
            "tone_lease_s": float(_env("DROPROOM_TONE_LEASE_S") or 30),
            # episodes branch (issue 12)
            "reminder_lead_s": int(_env("DROPROOM_REMINDER_LEAD_S") or 900),
            # webhooksout (issue 13)
            "webhook_allow_private": (_env("DROPROOM_WEBHOOK_ALLOW_PRIVATE") or "0")
            in ("1", "true", "yes"),
            # studioapi (issue 12)
            "invite_ttl_s": int(_env("DROPROOM_INVITE_TTL_S") or 7 * 24 * 3600),
            # workers (issue 14)
            "node": _env("DROPROOM_NODE") or "",
            "worker": _env("DROPROOM_WORKER") or "w1",
            "workers": int(_env("DROPROOM_WORKERS") or 0),
            # roomrelay (issue 14)
            "sio_relay": (_env("DROPROOM_SIO_RELAY") or "rooms").lower(),
            # hls (issue 15)
            "hls": (_env("DROPROOM_HLS") or "1") in ("1", "true", "yes"),
            "hls_segment_s": float(_env("DROPROOM_HLS_SEGMENT_S") or 2.0),
            "hls_window": int(_env("DROPROOM_HLS_WINDOW") or 6),
            "hls_bitrate": int(_env("DROPROOM_HLS_BITRATE") or 64000),
            "hls_base_url": _env("DROPROOM_HLS_BASE_URL"),
            "hls_link_ttl_s": float(_env("DROPROOM_HLS_LINK_TTL_S") or 600.0),
            # medialease (issues 14/15)
            "media_lease_ttl_s": float(_env("DROPROOM_MEDIA_LEASE_TTL_S") or 3.0),
            "region": _env("DROPROOM_REGION") or "",
            "node_url_override": _env("DROPROOM_NODE_URL"),
            # bigroom (issue 14)
            "big_room": int(_env("DROPROOM_BIG_ROOM") or 500),
            "big_room_presence_s": float(_env("DROPROOM_BIG_ROOM_PRESENCE_S") or 2.0),
        }
        values.update(overrides)
        settings = cls(**values)
        if settings.redis_cluster and not settings.redis_url:
            raise ValueError("DROPROOM_REDIS_CLUSTER=1 needs REDIS_URL (one node of the cluster)")
        if settings.tone_lease_s < 1 or settings.tone_job_timeout_s <= 0:
            raise ValueError("DROPROOM_TONE_LEASE_S must be >= 1, DROPROOM_TONE_JOB_TIMEOUT_S > 0")
        if settings.download_ttl_s < 1:
            raise ValueError("DROPROOM_DOWNLOAD_TTL_S must be at least 1 (seconds)")
        if not 0 <= settings.reminder_lead_s <= 7 * 86400:
            raise ValueError("DROPROOM_REMINDER_LEAD_S must be 0 to 604800 (seconds)")
        if not 60 <= settings.invite_ttl_s <= 30 * 24 * 3600:
            raise ValueError("DROPROOM_INVITE_TTL_S must be 60 to 2592000 (30 days) seconds")
        if settings.workers < 0:
            raise ValueError("DROPROOM_WORKERS must be 1 or more (0: the machine's cores)")
        if not settings.node:  # stable for this node: its host name and port
            settings = replace(settings, node=f"{socket.gethostname()}:{settings.port}")
        if settings.media_lease_ttl_s < 0.3:
            raise ValueError("DROPROOM_MEDIA_LEASE_TTL_S must be at least 0.3 (seconds)")
        if settings.big_room < 1 or settings.big_room_presence_s <= 0:
            raise ValueError("DROPROOM_BIG_ROOM must be >= 1, DROPROOM_BIG_ROOM_PRESENCE_S > 0")
        if settings.hls_link_ttl_s < 10:
            raise ValueError("DROPROOM_HLS_LINK_TTL_S must be at least 10 (seconds)")
        if settings.sio_relay not in SIO_RELAYS:
            raise ValueError(f"DROPROOM_SIO_RELAY must be one of {', '.join(SIO_RELAYS)}")
        if not 0 < settings.port < 65536:
            raise ValueError(f"port out of range: {settings.port}")
        return settings

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)
