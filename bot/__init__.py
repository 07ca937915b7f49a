"""The Slack front end: Bolt AsyncApp, listeners, safe file download and the throttled message writer."""
