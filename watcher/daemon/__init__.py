"""The watcher daemon: scheduled checks, health and metrics endpoints."""
