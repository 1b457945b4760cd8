"""Notifications and the incident event log: the outbox's deliveries by e-mail (SMTP with
STARTTLS and authentication) and webhook (JSON, HMAC-signed), the weekly report's e-mail, and
the append-only JSONL log of incident events for a SIEM.

Sits between ``monitor.district`` (which reads its configuration model) and the incident
store it reads; it imports only ``monitor.incidents`` and the layers below.
"""
