"""ledgerdrill: chaos drills for finance ERP platforms, with measured RTO and RPO."""

__version__ = "0.1.0"
