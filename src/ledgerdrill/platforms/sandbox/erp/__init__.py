"""The sandbox's reference ERP: a small service speaking a subset of Odoo's external API
(JSON-RPC, ``/web/dataset/call_kw`` and XML-RPC) with Odoo's wire formats, backed by the
sandbox's PostgreSQL and Redis. See README.md for what differs from a real Odoo.
"""

from ledgerdrill.platforms.sandbox.erp.config import ErpConfig
from ledgerdrill.platforms.sandbox.erp.schema import ensure_schema

__all__ = ["ErpConfig", "ensure_schema"]
