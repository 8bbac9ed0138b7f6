"""The webhooks' pure rules (decision 0026): signing per Standard Webhooks, event-type filters, which addresses a
delivery may reach, retries. No I/O here."""
