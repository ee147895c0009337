"""The market slice: daily bars of KRX and the US market, partitioned by each exchange's sessions."""

import dagster as dg

from batch_assets.defs.market.assets import build_bar_asset
from batch_assets.defs.market.partitions import session_partitions
from batch_assets.defs.market.resources import build_market_resource
from batch_assets.lib.markets.calendars import EXCHANGES
from batch_assets.lib.settings import Settings, load_settings


def build_market(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            build_bar_asset(exchange, session_partitions(exchange, settings), settings.markets_start)
            for exchange in EXCHANGES
        ],
        resources={"market_data": build_market_resource(settings)},
    )


@dg.definitions
def market() -> dg.Definitions:
    return build_market(load_settings())
