"""Payment providers: the interface (base.py), the registry, and the three built in."""

from __future__ import annotations

from siyu.payments.providers.balance import (
    BalancePaymentProvider,
    BalanceProvider,
    BalanceUnavailable,
    balance_provider,
    register_balance_provider,
)
from siyu.payments.providers.base import (
    Notification,
    NotificationRejected,
    PaymentProvider,
    ProviderError,
    ProviderRefund,
    ProviderStart,
    ProviderUnavailable,
    StartContext,
    get_provider,
    provider_names,
    register_provider,
)
from siyu.payments.providers.sandbox import SandboxProvider
from siyu.payments.providers.wechatpay import WechatPayNotConfigured, WechatPayProvider

register_provider(SandboxProvider())
register_provider(WechatPayProvider())
register_provider(BalancePaymentProvider())

__all__ = [
    "BalancePaymentProvider", "BalanceProvider", "BalanceUnavailable", "Notification", "NotificationRejected",
    "PaymentProvider", "ProviderError", "ProviderRefund", "ProviderStart", "ProviderUnavailable", "SandboxProvider",
    "StartContext", "WechatPayNotConfigured", "WechatPayProvider", "balance_provider", "get_provider",
    "provider_names", "register_balance_provider", "register_provider",
]
