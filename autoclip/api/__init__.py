"""The HTTP service: upload videos, start reels as runs of the `auto-clip` deployment, follow and download
them (`autoclip api serve`). The API process never runs a job itself; workers do."""
