"""Settings, read from `SIYU_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_", extra="ignore")

    database_url: str = "sqlite:///./siyu.db"
    secret_key: str = "change-me-in-production"
    # Enables POST /api/v1/shop/{m}/auth/dev-login; the demo and the tests set it.
    dev_login: bool = False
    media_dir: Path = Path("./media")
    media_max_bytes: int = 5 * 1024 * 1024
    redis_url: str | None = None
    huey_path: Path = Path("./siyu-huey.db")
    # The job queue's name (its Redis keys): deployments sharing one Redis, or a benchmark beside a
    # deployment, each keep their own queue.
    huey_name: str = "siyu"
    # "inline": event handlers run in the process right after the commit; "huey": in the worker.
    events_mode: str = "inline"
    # Requests one server process works on at once (the others wait in its event loop, holding nothing);
    # 0: as many as the database pool has connections (at most 40, anyio's worker threads). Python work
    # beyond a few threads per process only adds GIL hand-offs, and on PostgreSQL longer-held row locks:
    # checkout under a flash sale, 2 processes on 2 cores, paid/s by this value: 30 (the pool) 12.2,
    # 8 14.7, 4 17.3, 2 21.0, 1 22.2 (bench/README.md). Raise it when requests mostly wait on I/O
    # (a distant database, slow providers) rather than on the CPU.
    max_inflight: int = 4
    wechat_api_base: str = "https://api.weixin.qq.com"
    # WeChat Pay API v3 base URL (tests point it at a local fake server).
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    # Where providers reach us (WeChat Pay notify_url); no trailing slash.
    public_base_url: str = "http://127.0.0.1:8000"
    default_locale: str = "zh_CN"
    timezone: str = "Asia/Shanghai"
    session_days: int = 14
    token_days: int = 30
    # argon2 cost; tests lower it so that creating staff stays fast.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    # Secure cookies need HTTPS; set to 1 behind TLS.
    secure_cookies: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
