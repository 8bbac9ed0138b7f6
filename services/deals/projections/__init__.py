"""The deals service's sales board: a projection (DDL + one batch ``apply``) and the queries that read it.

``sales_board`` holds the read model (tables, apply, the ``board`` projection); ``board_queries`` what reads it.
The analytics read model is ``services.deals.analytics``.
"""

from services.deals.projections.board_queries import (
    BOARD_ROW,
    VISIBLE,
    board_view,
    follow_ups_due,
    list_deals,
    stuck_deals,
    visible_deals,
)
from services.deals.projections.sales_board import BOARD_COLUMNS, BOARD_DDL, FOLLOW_UP_COLUMNS, apply_board, board

__all__ = [
    "BOARD_COLUMNS",
    "BOARD_DDL",
    "BOARD_ROW",
    "FOLLOW_UP_COLUMNS",
    "VISIBLE",
    "apply_board",
    "board",
    "board_view",
    "follow_ups_due",
    "list_deals",
    "stuck_deals",
    "visible_deals",
]
