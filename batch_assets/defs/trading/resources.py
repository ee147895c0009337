"""The trading slice's resource: the broker orders go to (the deterministic paper broker by default)."""

from typing import Literal

import dagster as dg

from batch_assets.lib.markets.broker import Broker, PaperBroker
from batch_assets.lib.settings import Settings
from batch_assets.lib.storage import FileStore


class BrokerResource(dg.ConfigurableResource):
    """Where orders go and fills come from. 'paper' fills from the session's daily bars; a real broker
    is another ``Broker`` implementation chosen here, with its credentials through ``dg.EnvVar``."""

    kind: Literal["paper"] = "paper"
    fill_at: Literal["open", "close"] = "close"
    fee_bps: float = 0.0
    max_volume_share: float | None = 0.1

    def broker(self, store: FileStore) -> Broker:
        return PaperBroker(store, fill_at=self.fill_at, fee_bps=self.fee_bps, max_volume_share=self.max_volume_share)


def build_broker_resource(settings: Settings) -> BrokerResource:
    return BrokerResource(
        kind=settings.trading_broker,
        fill_at=settings.trading_fill_at,
        fee_bps=settings.trading_fee_bps,
        max_volume_share=settings.trading_max_volume_share,
    )
