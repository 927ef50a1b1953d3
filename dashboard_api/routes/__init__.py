"""One router per resource: sites, health, metrics, and the web page."""
