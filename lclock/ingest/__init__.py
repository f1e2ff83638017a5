"""Bringing the logs of your own implementation in: text logs to schema-v1 run folders."""
